//! A real Consul client from crates.io (`rs-consul`) against the lab's registry on a loopback
//! socket: register, heartbeat a TTL check, ask for passing instances, block on a change,
//! deregister. `rs-consul` has no agent API, so the heartbeat is the agent's
//! `PUT /v1/agent/check/pass/:id`, sent as any Consul client sends it.

use std::collections::HashMap;
use std::time::Duration;

use lab_discovery::{RegistryService, Settings};
use lab_runtime::TokioClock;
use rs_consul::{
    Config, Consul, DeregisterEntityPayload, GetServiceNodesRequest, QueryOptions,
    RegisterEntityCheck, RegisterEntityPayload, RegisterEntityService,
};

async fn start() -> (lab_runtime::Running, String) {
    let settings = Settings::default();
    let service = RegistryService::start(&settings, TokioClock::new()).expect("a registry");
    let listener = lab_runtime::serve::bind_loopback(0)
        .await
        .expect("a free port");
    let running = lab_runtime::serve::spawn_on(listener, service.router(&settings))
        .expect("the registry serves");
    let url = format!("http://{}", running.addr);
    (running, url)
}

fn client(url: &str) -> Consul {
    Consul::new(Config {
        address: url.to_owned(),
        token: None,
        ..Default::default()
    })
}

fn registration() -> RegisterEntityPayload {
    RegisterEntityPayload {
        ID: None,
        Node: "registry".to_owned(),
        Address: "127.0.0.1".to_owned(),
        Datacenter: None,
        TaggedAddresses: HashMap::new(),
        NodeMeta: HashMap::new(),
        Service: Some(RegisterEntityService {
            ID: Some("user-1".to_owned()),
            Service: "user".to_owned(),
            Tags: vec!["v1".to_owned()],
            TaggedAddresses: HashMap::new(),
            Meta: HashMap::new(),
            Port: Some(8081),
            Namespace: None,
        }),
        Checks: vec![RegisterEntityCheck {
            Node: None,
            CheckID: Some("user-1-ttl".to_owned()),
            Name: "user-1 heartbeat".to_owned(),
            Notes: None,
            Status: None,
            ServiceID: Some("user-1".to_owned()),
            Definition: HashMap::from([("TTL".to_owned(), "10s".to_owned())]),
        }],
        SkipNodeUpdate: None,
    }
}

fn passing() -> GetServiceNodesRequest<'static> {
    GetServiceNodesRequest {
        service: "user",
        passing: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_consul_client_registers_heartbeats_watches_and_deregisters() {
    let (running, url) = start().await;
    let consul = client(&url);
    consul
        .register_entity(&registration())
        .await
        .expect("the registry accepts rs-consul's catalog registration");

    let before = consul
        .get_service_nodes(passing(), None)
        .await
        .expect("the health endpoint answers in Consul's shape");
    assert!(
        before.response.is_empty(),
        "a new TTL check starts critical: no passing instance before the first heartbeat"
    );

    let heartbeat = reqwest::Client::new()
        .put(format!("{url}/v1/agent/check/pass/user-1-ttl?note=alive"))
        .send()
        .await
        .expect("the heartbeat is answered");
    assert_eq!(
        heartbeat.status(),
        200,
        "a heartbeat for a known TTL check is a 200"
    );

    let after = consul
        .get_service_nodes(passing(), None)
        .await
        .expect("the health endpoint answers");
    assert_eq!(
        after.response.len(),
        1,
        "after the heartbeat the instance passes"
    );
    let node = &after.response[0];
    assert_eq!(
        (
            node.service.id.as_str(),
            node.service.port,
            node.service.tags.clone()
        ),
        ("user-1", 8081, vec!["v1".to_owned()]),
        "the client reads back what it registered"
    );
    assert!(
        after.index > before.index,
        "X-Consul-Index moved with the check's status"
    );

    // A blocking query from the index just read, answered by the deregistration.
    let watcher = {
        let consul = client(&url);
        let index = after.index;
        tokio::spawn(async move {
            consul
                .get_service_nodes(
                    passing(),
                    Some(QueryOptions {
                        index: Some(index),
                        wait: Some(Duration::from_secs(60)),
                        timeout: Some(Duration::from_secs(120)),
                        ..Default::default()
                    }),
                )
                .await
        })
    };
    consul
        .deregister_entity(&DeregisterEntityPayload {
            Node: Some("registry".to_owned()),
            Datacenter: None,
            CheckID: None,
            ServiceID: Some("user-1".to_owned()),
            Namespace: None,
        })
        .await
        .expect("the registry accepts rs-consul's deregistration");
    let woken = watcher
        .await
        .expect("the watcher task")
        .expect("the blocking query is answered");
    assert!(
        woken.index > after.index,
        "the blocking query returns with a newer index ({} after {})",
        woken.index,
        after.index
    );
    assert!(
        woken.response.is_empty(),
        "and without the deregistered instance"
    );
    let names = consul
        .get_all_registered_service_names(None)
        .await
        .expect("the catalog lists services");
    assert!(
        names.response.is_empty(),
        "nothing is left registered: {:?}",
        names.response
    );
    running.stop().await;
}
