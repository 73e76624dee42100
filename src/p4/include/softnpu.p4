/*
 * softnpu.p4 as Falcon bundles it: the SoftNPU architecture a program targets, i.e. the two
 * metadata structs the switch exchanges with the program and the Checksum extern.
 *
 * ---------------------------------------------------------------------------------------
 * From a program's decisions to the switch's output (Pipeline.processPacket's PacketOut[])
 * ---------------------------------------------------------------------------------------
 *  1. Before parsing, every field of both structs is zero / false, except ingress.port,
 *     which holds the port the frame arrived on (0..radix-1; port 0 is the CPU port).
 *  2. The parser runs. `transition reject`, or an extract that runs past the end of the
 *     frame, drops the frame: the result is [].
 *  3. The ingress control runs. Then, in this order:
 *       - egress.drop is true                   -> [] (it wins over broadcast too);
 *       - egress.broadcast is true               -> one copy for every port 0..radix-1
 *                                                  except ingress.port, ascending;
 *       - egress.port was assigned at least once -> one copy for egress.port;
 *       - otherwise                              -> [] (x4c keeps a never-assigned port as an
 *                                                  empty value and drops the frame; programs
 *                                                  written for x4c rely on that, e.g. a
 *                                                  "drop" action with an empty body).
 *     A copy for a port outside 0..radix-1 is dropped (the program cannot see the radix).
 *  4. The egress control runs once per copy, with egress.port set to that copy's port and
 *     everything else as ingress left it; if it sets egress.drop, that copy is dropped.
 *  5. A copy's bytes are the headers of the parser's output struct that are valid at that
 *     point, each serialised from its fields, in the order the struct declares them (not the
 *     order they were extracted or made valid), followed unchanged by the frame's bytes after
 *     the last byte the parser extracted. There is no deparser control.
 *  6. The result is [[bytes, port], ...] in the order of step 3.
 *
 * The runtime adds no policy of its own: no reflection check (a frame may leave by the
 * port it came in on), no "CPU port to CPU port" rule, no TTL or checksum update. Those are
 * the program's business, and sidecar-lite.p4 does them itself.
 *
 * The package: a program ends its declarations with
 *
 *     SoftNPU(my_parser(), ingress(), egress()) main;
 *
 * where the parser is (packet_in pkt, out H hdr, inout ingress_metadata_t ingress) and both
 * controls are (inout H hdr, inout ingress_metadata_t ingress, inout egress_metadata_t
 * egress), H being the program's struct of headers. Like x4c, Falcon knows the SoftNPU
 * package by name and does not declare it here: a generic declaration (`package SoftNPU<H>
 * (...)` over generic parser and control types) is beyond what x4c's checker accepts. Table
 * names are "<ingress control's name>.<instance>.<instance>...<table>", e.g.
 * `ingress.router.v4_idx.rtr`, which is why the ingress control is usually named `ingress`.
 */

/*
 * What the switch tells the program about a frame, plus per-frame scratch space the parser
 * and the ingress control share. Only `port` is set by the switch; the rest start at zero.
 */
struct ingress_metadata_t {
    /* The port the frame arrived on. */
    bit<16> port;

    /*
     * Fields x4c's stock softnpu.p4 declares, kept for programs written against it. The
     * switch does not look at them (`drop` here is not egress.drop).
     */
    bool nat;
    bit<16> nat_id;
    bool drop;

    /*
     * Fields Oxide's sidecar-lite declares in its own copy of this file (path index of a
     * multipath route, an LLDP flag from the parser, and the state of its NAT / attached-
     * subnet forwarding). Declared here so such programs need no private copy. Its
     * `curr_opt` (a Geneve option header) is left out: its type belongs to the program.
     */
    bit<16> path_idx;
    bool lldp;
    bool forward_needed;
    bit<128> forward_tgt;
    bit<24> forward_vni;
    bit<48> forward_mac;
    bit<6> geneve_chunks;
}

/*
 * What the program tells the switch: where the frame goes (see the top of this file) and
 * routing state passed between the program's controls.
 */
struct egress_metadata_t {
    /* The output port; only counts once assigned. */
    bit<16> port;
    /* Next hops a router resolves to a MAC address (0 = none). */
    bit<128> nexthop_v6;
    bit<32> nexthop_v4;
    /* The single next-hop field of x4c's older examples. */
    bit<128> nexthop;
    /* A VLAN to tag the frame with on the way out (0 = none); sidecar-lite's field. */
    bit<12> vlan_id;
    /* Discard the frame (or, in egress, this copy of it). */
    bool drop;
    /* Send a copy out of every port but the one it came in on. */
    bool broadcast;
}

/*
 * A 16-bit checksum over a list of values: `csum.run({a, b, ...})`. Falcon computes the
 * Internet checksum (RFC 1071): the values' bits are concatenated in list order, MSB first,
 * zero-padded to a multiple of 16 bits, summed as big-endian 16-bit words with end-around
 * carry, and the sum complemented. For two IPv4 addresses that is ~(a.hi + a.lo + b.hi +
 * b.lo) folded to 16 bits; sidecar-lite uses it as the hash that spreads flows over the
 * paths of a multipath route.
 *
 * Where x4c differs: its runtime (p4rs) checksums each list element on its own, complemented,
 * and adds those results without end-around carry or a final complement, so on real SoftNPU
 * the same flow can take a different path of a multipath route than on Falcon.
 */
extern Checksum {
    bit<16> run<T>(in T data);
}
