//! Fuzz target: `Connection` lists and `X-Forwarded-For` chains are attacker-written; the
//! header rules must never panic on them, and an untrusted peer must never be able to
//! name another client.

#![no_main]

use std::net::IpAddr;

use gateway_core::headers::{
    Cidr, client_ip, connection_named, forwarded_for_upstream, is_hop_by_hop,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, [u8; 4], &str)| {
    let (connection, forwarded_for, peer, name) = input;
    let named = connection_named([connection]);
    let _ = is_hop_by_hop(name, &named);
    let trusted = [Cidr::parse("10.0.0.0/8").expect("valid")];
    let peer = IpAddr::from(peer);
    let client = client_ip(peer, [forwarded_for], &trusted);
    let chain = forwarded_for_upstream(peer, [forwarded_for], &trusted);
    if !trusted[0].contains(peer) {
        assert_eq!(client, peer);
        assert_eq!(chain, peer.to_string());
    }
    let _ = Cidr::parse(forwarded_for);
});
