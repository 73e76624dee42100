/*
 * sidecar-lite, Falcon's P4 version: the switch program SoftNPU runs for an Oxide rack,
 * written for the x4c dialect. It behaves frame for frame like the TypeScript version
 * (sidecar-lite.ts, which the differential test compares it with) and has the tables,
 * table names, key layouts and action parameter widths that scadm and dendrite program.
 *
 * Per frame:
 *   1. parse Ethernet, then one of IPv4 / IPv6 / ARP / an 802.1Q tag / LLDP / a sidecar
 *      header (0x0901), then, after IPv4 or IPv6, the first bytes of TCP / UDP / ICMP (and
 *      the DDM header after IPv6). Other ethertypes, and frames too short for the headers
 *      their types announce, are dropped;
 *   2. a frame with a sidecar header comes from the CPU port's side: the header is removed
 *      and the frame leaves by the port the header names;
 *   3. an ARP frame whose target address is in a proxy_arp range is answered, out of the
 *      port it came in on;
 *   4. a frame for the switch itself (its addresses, ff02::/16, any other ARP, LLDP) is
 *      punted to the CPU port (0) with a sidecar header in front of it;
 *   5. anything else is routed: LPM on the destination gives a path index (spread over the
 *      slots of a multipath route by a checksum of the addresses), the index gives a port
 *      and next hop, the next hop's MAC becomes the destination MAC, the port's MAC the
 *      source MAC, and the frame is tagged if the route has a VLAN.
 * Routed frames never leave by the port they came in on; proxy-ARP answers always do, and a
 * sidecar header may name the in-port too (but a frame never goes from port 0 to port 0,
 * except a proxy-ARP answer). No TTL decrement and no checksum update.
 *
 * Tables (x4c's encodings: exact keys and all parameters little-endian, an LPM key is the
 * address in network order then the prefix length, a range key is lo then hi):
 *
 *   table                                 key (bytes)                    actions (parameter bytes)
 *   ingress.local.local_v4                ipv4 dst exact (4)             local (0), nonlocal (0)
 *   ingress.local.local_v6                ipv6 dst exact (16)            local (0), nonlocal (0)
 *   ingress.router.v4_idx.rtr             ipv4 dst lpm (4+1)             index (idx 2, slots 1), drop (0)
 *   ingress.router.v4_route.rtr           path index exact (2)           forward (port 2, nexthop 4),
 *                                                                        forward_v6 (port 2, nexthop 16),
 *                                                                        forward_vlan (2, 4, vlan 2),
 *                                                                        forward_vlan_v6 (2, 16, vlan 2)
 *                                                                        (vlan: a 12-bit VID in 2 bytes;
 *                                                                        the top 4 bits are ignored)
 *   ingress.router.v6_idx.rtr             ipv6 dst lpm (16+1)            index (2, 1), drop (0)
 *   ingress.router.v6_route.rtr           path index exact (2)           forward (2, 16), forward_vlan (2, 16, 2)
 *   ingress.resolver.resolver_v4          IPv4 next hop exact (4)        rewrite_dst (mac 6), drop (0)
 *   ingress.resolver.resolver_v6          IPv6 next hop exact (16)       rewrite_dst (mac 6), drop (0)
 *   ingress.mac.mac_rewrite               egress port exact (2)          rewrite (mac 6)
 *   ingress.pxarp.proxy_arp               ARP target range (4+4)         proxy_arp_reply (mac 6)
 *   ingress.nat.nat_v4                    ipv4 dst exact (4), L4 id range (2+2)   forward_to_sled (target 16,
 *   ingress.nat.nat_v6                    ipv6 dst exact (16), L4 id range (2+2)   vni 3, mac 6) in all four
 *   ingress.attached.attached_subnet_v4   ipv4 dst lpm (4+1)
 *   ingress.attached.attached_subnet_v6   ipv6 dst lpm (16+1)
 *
 * Where Oxide's sidecar-lite.p4 differs (this program does what sidecar-lite.ts does):
 *   - Oxide parses Geneve after UDP port 6081 (and rejects a frame whose Geneve header or
 *     options are short or unknown), decapsulates Geneve frames addressed to the switch, and
 *     encapsulates frames hitting nat_v4/nat_v6/attached_subnet_* in Geneve towards a sled.
 *     Here the NAT and attached-subnet tables are looked up but their hits change nothing.
 *   - Oxide extracts up to sixteen 4-byte DDM elements after the DDM header, as many as its
 *     header_length announces; here they stay in the payload (the same bytes go out, but a
 *     frame shorter than its header_length says is not rejected here).
 *   - Oxide computes `hash % slots` for every index hit (slots = 0 divides by zero); here a
 *     route with 0 or 1 slots uses its index as is.
 *   - Oxide stacks a second VLAN tag with a wrong inner ethertype when a VLAN route meets a
 *     frame that is already tagged; here the existing tag's VLAN ID is rewritten.
 *   - Oxide has no rule against a frame from the CPU port to the CPU port; here (as in
 *     Propolis) such a frame is dropped when punted or addressed by a sidecar header.
 */
#include <core.p4>
#include <softnpu.p4>
#include "sidecar-lite-headers.p4"

SoftNPU(
    sl_parse(),
    ingress(),
    egress()
) main;

/* ------------------------------------------------------------------------------------ */
/* Parser                                                                                */
/* ------------------------------------------------------------------------------------ */

parser sl_parse(
    packet_in pkt,
    out sl_headers_t hdr,
    inout ingress_metadata_t ig,
) {
    state start {
        pkt.extract(hdr.ethernet);
        if (hdr.ethernet.ether_type == 16w0x0800) { transition ipv4; }
        if (hdr.ethernet.ether_type == 16w0x86dd) { transition ipv6; }
        if (hdr.ethernet.ether_type == 16w0x0806) { transition arp; }
        if (hdr.ethernet.ether_type == 16w0x8100) { transition vlan; }
        if (hdr.ethernet.ether_type == 16w0x88cc) { transition lldp; }
        if (hdr.ethernet.ether_type == 16w0x0901) { transition sidecar; }
        transition reject;
    }

    /* From the CPU port: what follows the sidecar header is any of the above but another sidecar header. */
    state sidecar {
        pkt.extract(hdr.sidecar);
        if (hdr.sidecar.ether_type == 16w0x0800) { transition ipv4; }
        if (hdr.sidecar.ether_type == 16w0x86dd) { transition ipv6; }
        if (hdr.sidecar.ether_type == 16w0x0806) { transition arp; }
        if (hdr.sidecar.ether_type == 16w0x8100) { transition vlan; }
        if (hdr.sidecar.ether_type == 16w0x88cc) { transition lldp; }
        transition reject;
    }

    /* One tag only, carrying IP or ARP. */
    state vlan {
        pkt.extract(hdr.vlan);
        if (hdr.vlan.ether_type == 16w0x0800) { transition ipv4; }
        if (hdr.vlan.ether_type == 16w0x86dd) { transition ipv6; }
        if (hdr.vlan.ether_type == 16w0x0806) { transition arp; }
        transition reject;
    }

    /* LLDP has no header of ours: the flag is all the ingress control needs. */
    state lldp {
        ig.lldp = true;
        transition accept;
    }

    state arp {
        pkt.extract(hdr.arp);
        transition accept;
    }

    state ipv4 {
        pkt.extract(hdr.ipv4);
        if (hdr.ipv4.protocol == 8w6) { transition tcp; }
        if (hdr.ipv4.protocol == 8w17) { transition udp; }
        if (hdr.ipv4.protocol == 8w1) { transition icmp; }
        transition accept;
    }

    state ipv6 {
        pkt.extract(hdr.ipv6);
        if (hdr.ipv6.next_hdr == 8w6) { transition tcp; }
        if (hdr.ipv6.next_hdr == 8w17) { transition udp; }
        if (hdr.ipv6.next_hdr == 8w58) { transition icmp; }
        if (hdr.ipv6.next_hdr == 8w0xdd) { transition ddm; }
        transition accept;
    }

    /* The L4 states record the NAT key: a destination port, or an ICMP identifier. */
    state tcp {
        pkt.extract(hdr.tcp);
        ig.nat_id = hdr.tcp.dst_port;
        transition accept;
    }

    state udp {
        pkt.extract(hdr.udp);
        ig.nat_id = hdr.udp.dst_port;
        transition accept;
    }

    state icmp {
        pkt.extract(hdr.icmp);
        ig.nat_id = hdr.icmp.ident;
        transition accept;
    }

    state ddm {
        pkt.extract(hdr.ddm);
        transition accept;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Ingress                                                                               */
/* ------------------------------------------------------------------------------------ */

/*
 * The top level. Its instances give the tables their names: ingress.local.local_v4,
 * ingress.router.v4_idx.rtr, ingress.resolver.resolver_v4, ingress.mac.mac_rewrite,
 * ingress.pxarp.proxy_arp, ingress.nat.nat_v4, ingress.attached.attached_subnet_v4, ...
 */
control ingress(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    local_addresses()   local;
    route_select()      router;
    neighbor_resolver() resolver;
    source_mac()        mac;
    arp_proxy()         pxarp;
    nat_lookup()        nat;
    attached_subnets()  attached;

    /* Sidecar header from the CPU port: restore the inner ethertype, drop the header, obey it. */
    action from_cpu() {
        eg.port = hdr.sidecar.out_port;
        hdr.ethernet.ether_type = hdr.sidecar.ether_type;
        hdr.sidecar.setInvalid();
        if (ig.port == 16w0) {
            if (eg.port == 16w0) { eg.drop = true; }
        }
    }

    /*
     * For the CPU port: a sidecar header (code 1, "to userspace") between the Ethernet
     * header and whatever followed it, naming the port the frame came in on.
     */
    action to_cpu() {
        hdr.sidecar.setValid();
        hdr.sidecar.code = 8w1;
        hdr.sidecar.pad = 8w0;
        hdr.sidecar.in_port = ig.port;
        hdr.sidecar.out_port = ig.port;
        hdr.sidecar.ether_type = hdr.ethernet.ether_type;
        hdr.sidecar.payload = 128w0x1701d;
        hdr.ethernet.ether_type = 16w0x0901;
        eg.port = 16w0;
    }

    /* The route's VLAN: rewrite the ID of a tag the frame has, or add one (PCP 0, DEI 0). */
    action tag_vlan() {
        if (hdr.vlan.isValid()) {
            hdr.vlan.pcp = 3w0;
            hdr.vlan.dei = 1w0;
            hdr.vlan.vid = eg.vlan_id;
        } else {
            hdr.vlan.setValid();
            hdr.vlan.pcp = 3w0;
            hdr.vlan.dei = 1w0;
            hdr.vlan.vid = eg.vlan_id;
            hdr.vlan.ether_type = hdr.ethernet.ether_type;
            hdr.ethernet.ether_type = 16w0x8100;
        }
    }

    apply {
        if (hdr.sidecar.isValid()) {
            from_cpu();
            return;
        }

        if (hdr.arp.isValid()) {
            bool answered = false;
            pxarp.apply(hdr, ig, eg, answered);
            if (answered) { return; }
        }

        bool for_switch = false;
        local.apply(hdr, ig, for_switch);
        if (for_switch) {
            if (ig.port == 16w0) {
                eg.drop = true;
                return;
            }
            to_cpu();
            return;
        }

        /* Looked up as Oxide does, but without effect (see the top of the file). */
        attached.apply(hdr, ig);
        nat.apply(hdr, ig);

        router.apply(hdr, ig, eg);
        if (eg.drop) { return; }
        resolver.apply(hdr, eg);
        if (eg.drop) { return; }

        /* Never back out of the in-port (this also keeps CPU frames off the CPU port). */
        if (eg.port == ig.port) {
            eg.drop = true;
            return;
        }

        mac.apply(hdr, eg);
        if (eg.vlan_id != 12w0) { tag_vlan(); }
    }
}

/* Addresses of the switch itself, plus what is always for it: IPv6 link-local multicast, ARP, LLDP. */
control local_addresses(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
    out bool is_local,
) {
    table local_v4 {
        key = { hdr.ipv4.dst: exact; }
        actions = { local; nonlocal; }
        default_action = nonlocal;
    }

    table local_v6 {
        key = { hdr.ipv6.dst: exact; }
        actions = { local; nonlocal; }
        default_action = nonlocal;
    }

    action local() { is_local = true; }
    action nonlocal() { is_local = false; }

    apply {
        is_local = false;
        if (hdr.ipv4.isValid()) {
            local_v4.apply();
        } else if (hdr.ipv6.isValid()) {
            local_v6.apply();
            if (hdr.ipv6.dst[127:112] == 16w0xff02) { is_local = true; }
        } else if (hdr.arp.isValid()) {
            is_local = true;
        } else if (ig.lldp) {
            is_local = true;
        }
    }
}

/* ARP answered on behalf of addresses in a range: the reply goes back out of the in-port. */
control arp_proxy(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
    out bool answered,
) {
    table proxy_arp {
        key = { hdr.arp.target_ip: range; }
        actions = { proxy_arp_reply; }
        default_action = NoAction;
    }

    /* Turns the frame into the reply in place; `owner` is the MAC that claims the address. */
    action proxy_arp_reply(bit<48> owner) {
        bit<32> asker_ip = hdr.arp.sender_ip;
        hdr.ethernet.dst = hdr.ethernet.src;
        hdr.ethernet.src = owner;
        hdr.arp.opcode = 16w2;
        hdr.arp.target_mac = hdr.arp.sender_mac;
        hdr.arp.sender_mac = owner;
        hdr.arp.sender_ip = hdr.arp.target_ip;
        hdr.arp.target_ip = asker_ip;
        eg.port = ig.port;
        answered = true;
    }

    apply {
        answered = false;
        proxy_arp.apply();
    }
}

/*
 * Routing in two steps per address family, as dendrite programs it: `*_idx.rtr` (LPM on
 * the destination) gives a path index and a slot count, `*_route.rtr` (exact on the index)
 * gives the port, the next hop and a VLAN. A miss in either drops the frame.
 */
control route_select(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    v4_index() v4_idx;
    v4_paths() v4_route;
    v6_index() v6_idx;
    v6_paths() v6_route;

    apply {
        if (hdr.ipv4.isValid()) {
            v4_idx.apply(hdr.ipv4.dst, hdr.ipv4.src, ig, eg);
            if (eg.drop) { return; }
            v4_route.apply(ig, eg);
        } else if (hdr.ipv6.isValid()) {
            v6_idx.apply(hdr.ipv6.dst, hdr.ipv6.src, ig, eg);
            if (eg.drop) { return; }
            v6_route.apply(ig, eg);
        } else {
            eg.drop = true;
        }
    }
}

/*
 * Prefix -> first path index and number of paths. With more than one path, the checksum
 * of the two addresses picks one, so a flow keeps its path (indices wrap at 16 bits).
 */
control v4_index(
    in bit<32> dst,
    in bit<32> src,
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    Checksum() csum;

    table rtr {
        key = { dst: lpm; }
        actions = { index; drop; }
        default_action = drop;
    }

    action drop() { eg.drop = true; }

    action index(bit<16> idx, bit<8> slots) {
        ig.path_idx = idx;
        if (slots > 8w1) {
            bit<16> flow_hash = csum.run({dst, src});
            bit<16> paths = slots;
            bit<16> pick = flow_hash % paths;
            ig.path_idx = idx + pick;
        }
    }

    apply { rtr.apply(); }
}

control v6_index(
    in bit<128> dst,
    in bit<128> src,
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    Checksum() csum;

    table rtr {
        key = { dst: lpm; }
        actions = { index; drop; }
        default_action = drop;
    }

    action drop() { eg.drop = true; }

    action index(bit<16> idx, bit<8> slots) {
        ig.path_idx = idx;
        if (slots > 8w1) {
            bit<16> flow_hash = csum.run({dst, src});
            bit<16> paths = slots;
            bit<16> pick = flow_hash % paths;
            ig.path_idx = idx + pick;
        }
    }

    apply { rtr.apply(); }
}

/*
 * Path index -> port, next hop (IPv4 or IPv6: an IPv4 route may have an IPv6 next hop) and
 * VLAN (0 = none). A next hop of 0 means "directly attached": no MAC is looked up.
 * A missing index drops the frame (drop is only the default; entries cannot use it).
 */
control v4_paths(
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    table rtr {
        key = { ig.path_idx: exact; }
        actions = { forward; forward_v6; forward_vlan; forward_vlan_v6; }
        default_action = drop;
    }

    action drop() { eg.drop = true; }

    action forward(bit<16> port, bit<32> nexthop) {
        eg.port = port;
        eg.nexthop_v4 = nexthop;
        eg.nexthop_v6 = 128w0;
        eg.vlan_id = 12w0;
    }

    action forward_v6(bit<16> port, bit<128> nexthop) {
        eg.port = port;
        eg.nexthop_v4 = 32w0;
        eg.nexthop_v6 = nexthop;
        eg.vlan_id = 12w0;
    }

    action forward_vlan(bit<16> port, bit<32> nexthop, bit<12> vlan_id) {
        eg.port = port;
        eg.nexthop_v4 = nexthop;
        eg.nexthop_v6 = 128w0;
        eg.vlan_id = vlan_id;
    }

    action forward_vlan_v6(bit<16> port, bit<128> nexthop, bit<12> vlan_id) {
        eg.port = port;
        eg.nexthop_v4 = 32w0;
        eg.nexthop_v6 = nexthop;
        eg.vlan_id = vlan_id;
    }

    apply { rtr.apply(); }
}

control v6_paths(
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    table rtr {
        key = { ig.path_idx: exact; }
        actions = { forward; forward_vlan; }
        default_action = drop;
    }

    action drop() { eg.drop = true; }

    action forward(bit<16> port, bit<128> nexthop) {
        eg.port = port;
        eg.nexthop_v4 = 32w0;
        eg.nexthop_v6 = nexthop;
        eg.vlan_id = 12w0;
    }

    action forward_vlan(bit<16> port, bit<128> nexthop, bit<12> vlan_id) {
        eg.port = port;
        eg.nexthop_v4 = 32w0;
        eg.nexthop_v6 = nexthop;
        eg.vlan_id = vlan_id;
    }

    apply { rtr.apply(); }
}

/* Next hop -> its MAC, the frame's new destination. An unknown next hop drops the frame. */
control neighbor_resolver(
    inout sl_headers_t hdr,
    inout egress_metadata_t eg,
) {
    table resolver_v4 {
        key = { eg.nexthop_v4: exact; }
        actions = { rewrite_dst; drop; }
        default_action = drop;
    }

    table resolver_v6 {
        key = { eg.nexthop_v6: exact; }
        actions = { rewrite_dst; drop; }
        default_action = drop;
    }

    action rewrite_dst(bit<48> dst) { hdr.ethernet.dst = dst; }
    action drop() { eg.drop = true; }

    apply {
        if (eg.nexthop_v4 != 32w0) { resolver_v4.apply(); }
        if (eg.nexthop_v6 != 128w0) { resolver_v6.apply(); }
    }
}

/* Egress port -> the switch's MAC on it, the frame's new source (unchanged when absent). */
control source_mac(
    inout sl_headers_t hdr,
    inout egress_metadata_t eg,
) {
    table mac_rewrite {
        key = { eg.port: exact; }
        actions = { rewrite; }
        default_action = NoAction;
    }

    action rewrite(bit<48> mac) { hdr.ethernet.src = mac; }

    apply { mac_rewrite.apply(); }
}

/*
 * Oxide's boundary-services NAT: (external address, L4 port or ICMP id range) -> the sled,
 * VNI and MAC to encapsulate towards. Falcon records a hit and does nothing else.
 */
control nat_lookup(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
) {
    table nat_v4 {
        key = {
            hdr.ipv4.dst: exact;
            ig.nat_id:    range;
        }
        actions = { forward_to_sled; }
        default_action = NoAction;
    }

    table nat_v6 {
        key = {
            hdr.ipv6.dst: exact;
            ig.nat_id:    range;
        }
        actions = { forward_to_sled; }
        default_action = NoAction;
    }

    action forward_to_sled(bit<128> target, bit<24> vni, bit<48> mac) {
        ig.forward_tgt = target;
        ig.forward_vni = vni;
        ig.forward_mac = mac;
        ig.forward_needed = true;
    }

    apply {
        if (hdr.ipv4.isValid()) {
            nat_v4.apply();
        } else if (hdr.ipv6.isValid()) {
            nat_v6.apply();
        }
    }
}

/* Oxide's attached subnets: a prefix -> a sled, as for NAT. Recorded, without effect. */
control attached_subnets(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
) {
    table attached_subnet_v4 {
        key = { hdr.ipv4.dst: lpm; }
        actions = { forward_to_sled; }
        default_action = NoAction;
    }

    table attached_subnet_v6 {
        key = { hdr.ipv6.dst: lpm; }
        actions = { forward_to_sled; }
        default_action = NoAction;
    }

    action forward_to_sled(bit<128> target, bit<24> vni, bit<48> mac) {
        ig.forward_tgt = target;
        ig.forward_vni = vni;
        ig.forward_mac = mac;
        ig.forward_needed = true;
    }

    apply {
        if (hdr.ipv4.isValid()) {
            attached_subnet_v4.apply();
        } else if (hdr.ipv6.isValid()) {
            attached_subnet_v6.apply();
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Egress: nothing to do per output port.                                                */
/* ------------------------------------------------------------------------------------ */

control egress(
    inout sl_headers_t hdr,
    inout ingress_metadata_t ig,
    inout egress_metadata_t eg,
) {
    apply { }
}
