/*
 * A small IPv4 router for Falcon's SoftNPU.
 *
 * Two tables, programmed at run time:
 *   ingress.routes    LPM on the destination address -> output port and next-hop MAC
 *   ingress.port_mac  exact on the output port       -> the router's own MAC on that port
 *
 * A routed frame leaves with its destination MAC set to the next hop and its source MAC
 * set to the router's port MAC. Frames that are not IPv4, that match no route, or whose
 * route leads back out of the port they came in on are dropped. (A real router would also
 * decrement the TTL and fix the header checksum; this one keeps the IP header as it is.)
 *
 * Entries, as the control plane sends them (x4c's encodings):
 *   routes    key = address (4 bytes, network order) + prefix length (1 byte)
 *             forward: port (2 bytes, little-endian) + MAC (6 bytes, reversed)
 *   port_mac  key = port (2 bytes, little-endian)
 *             set_src: MAC (6 bytes, reversed)
 */
#include <core.p4>
#include <softnpu.p4>

header ethernet_h {
    bit<48> dst;
    bit<48> src;
    bit<16> ether_type;
}

header ipv4_h {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  dscp_ecn;
    bit<16> total_len;
    bit<16> ident;
    bit<3>  flags;
    bit<13> frag_offset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdr_checksum;
    bit<32> src;
    bit<32> dst;
}

/* The headers a frame can have, in the order they are sent. */
struct headers_t {
    ethernet_h eth;
    ipv4_h     ipv4;
}

SoftNPU(
    parse(),
    ingress(),
    egress()
) main;

/* Ethernet, then IPv4; anything else is rejected (dropped). */
parser parse(
    packet_in pkt,
    out headers_t hdr,
    inout ingress_metadata_t ingress,
) {
    state start {
        pkt.extract(hdr.eth);
        if (hdr.eth.ether_type == 16w0x0800) { transition ipv4; }
        transition reject;
    }

    state ipv4 {
        pkt.extract(hdr.ipv4);
        transition accept;
    }
}

control ingress(
    inout headers_t hdr,
    inout ingress_metadata_t ingress,
    inout egress_metadata_t egress,
) {
    action drop() { egress.drop = true; }

    action forward(bit<16> port, bit<48> next_hop_mac) {
        egress.port = port;
        hdr.eth.dst = next_hop_mac;
    }

    action set_src(bit<48> mac) { hdr.eth.src = mac; }

    table routes {
        key = { hdr.ipv4.dst: lpm; }
        actions = { forward; drop; }
        default_action = drop;
    }

    table port_mac {
        key = { egress.port: exact; }
        actions = { set_src; }
        default_action = NoAction;
    }

    apply {
        routes.apply();
        if (egress.drop) { return; }
        if (egress.port == ingress.port) {
            egress.drop = true;
            return;
        }
        port_mac.apply();
    }
}

/* Nothing to do per output port. */
control egress(
    inout headers_t hdr,
    inout ingress_metadata_t ingress,
    inout egress_metadata_t egress,
) {
    apply { }
}
