/*
 * core.p4 as Falcon bundles it: the packet externs every SoftNPU program uses.
 *
 * A program says `#include <core.p4>`; Falcon resolves the angle-bracket form from this
 * folder. The declarations below have the names and signatures of the core.p4 that Oxide's
 * x4c compiler ships, so a program written for x4c compiles here without edits.
 *
 * What x4c has built in, and so is deliberately NOT declared here (x4c's own grammar has no
 * `match_kind { ... }` or `error { ... }` declarations, and would reject this file if it had):
 *
 *   - the match kinds `exact`, `lpm`, `range` and `ternary` (keywords of the language);
 *   - the type `error` (usable as a type name; no error constants are defined);
 *   - the parser states `accept` and `reject`;
 *   - `NoAction`, usable as a table's default_action without being declared;
 *   - the header methods isValid(), setValid() and setInvalid(), and `apply()` on tables
 *     and control instances.
 */

/*
 * The frame being parsed. Extraction moves a cursor through the frame from its first byte;
 * an extract that would run past the end of the frame rejects it (the frame is dropped).
 */
extern packet_in {
    /* Copies the next bytes of the frame into a fixed-size header and marks it valid. */
    void extract<T>(out T headerLvalue);
    /* The same for a header that ends in a varbit field of `varFieldSizeBits` bits. */
    void extract<T>(out T variableSizeHeader, in bit<32> varFieldSizeBits);
    /* The next bytes read as a T without moving the cursor. */
    T lookahead<T>();
    /* The frame's length in bytes. */
    bit<32> length();
    /* Moves the cursor on by `bits` bits without extracting anything. */
    void advance(bit<32> bits);
}

/*
 * The frame being built. SoftNPU programs have no deparser: the runtime emits the valid
 * headers itself (see softnpu.p4), so nothing calls emit; it is declared for x4c parity.
 */
extern packet_out {
    void emit<T>(in T hdr);
}
