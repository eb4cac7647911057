//! The deployment files agree with each other and with the table they deploy: the port the
//! image's ENTRYPOINT listens on is the port Kubernetes probes and the Service targets, the
//! headless Service is the name and port deploy/scale_out.rs resolves, each Service
//! selects its Deployment's pods, and the Dockerfile builds and copies the right binary.
//! A port or a label changed in one file and not in the others fails here, not in a cluster.

use proxy_runtime::spec::{Endpoint, HealthKind, HealthSpec};
use proxy_runtime::Table;
use std::net::SocketAddr;
use yaml_rust2::{Yaml, YamlLoader};

#[path = "../../deploy/scale_out.rs"]
#[allow(dead_code)]
mod scale_out;

use scale_out::ScaleOut;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn manifest() -> Vec<Yaml> {
    let text = read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes.yaml"
    ));
    let docs = YamlLoader::load_from_str(&text).expect("deploy/kubernetes.yaml is YAML");
    // A stray `---` makes an empty document; it is not an object.
    docs.into_iter()
        .filter(|d| !matches!(d, Yaml::Null | Yaml::BadValue))
        .collect()
}

/// The object of `kind` named `name`, or a panic listing what the manifest has.
fn object<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| {
            panic!(
                "no {kind} `{name}` in deploy/kubernetes.yaml; it has {:?}",
                kinds(docs)
            )
        })
}

fn kinds(docs: &[Yaml]) -> Vec<(String, String)> {
    docs.iter()
        .map(|d| {
            let s = |y: &Yaml| y.as_str().unwrap_or("?").to_owned();
            (s(&d["kind"]), s(&d["metadata"]["name"]))
        })
        .collect()
}

/// The only container of a Deployment's pods.
fn container(deployment: &Yaml) -> &Yaml {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .expect("a Deployment has containers");
    assert_eq!(containers.len(), 1, "one container per pod");
    &containers[0]
}

/// A port as a probe or a Service gives it (a number, or the name of a container port),
/// as a number.
fn port_of(port: &Yaml, container: &Yaml) -> Option<u16> {
    match port {
        Yaml::Integer(n) => u16::try_from(*n).ok(),
        Yaml::String(name) => container["ports"]
            .as_vec()?
            .iter()
            .find(|p| p["name"].as_str() == Some(name.as_str()))
            .and_then(|p| p["containerPort"].as_i64())
            .and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
}

fn container_ports(container: &Yaml) -> Vec<u16> {
    container["ports"]
        .as_vec()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["containerPort"].as_i64())
                .filter_map(|n| u16::try_from(n).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every label a Service selects on is on its Deployment's pods, with the same value.
fn assert_selects(service: &Yaml, deployment: &Yaml) {
    let selector = service["spec"]["selector"]
        .as_hash()
        .expect("the Service has a selector");
    assert!(!selector.is_empty(), "an empty selector selects nothing");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector {
        let key = key.as_str().expect("label keys are strings");
        assert_eq!(
            labels[key].as_str(),
            value.as_str(),
            "Service `{}` selects {key}={value:?}, which its Deployment's pods do not carry",
            service["metadata"]["name"].as_str().unwrap_or("?")
        );
    }
    // The Deployment must own the same pods, or `kubectl apply` refuses it.
    for (key, value) in deployment["spec"]["selector"]["matchLabels"]
        .as_hash()
        .expect("the Deployment has matchLabels")
    {
        assert_eq!(&labels[key.as_str().expect("label key")], value);
    }
}

/// The Dockerfile's instructions: continuation lines joined, comments dropped, each as
/// (INSTRUCTION, arguments).
fn dockerfile() -> Vec<(String, String)> {
    let text = read(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Dockerfile"));
    let mut out = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && logical.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                logical.push_str(part);
                logical.push(' ');
            }
            None => {
                logical.push_str(line);
                let (instruction, args) = logical
                    .split_once(char::is_whitespace)
                    .unwrap_or((logical.as_str(), ""));
                out.push((instruction.to_ascii_uppercase(), args.trim().to_owned()));
                logical.clear();
            }
        }
    }
    assert!(
        logical.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    out
}

/// The value that follows `flag` in the ENTRYPOINT (exec form) of the image.
fn entrypoint_flag(flag: &str) -> SocketAddr {
    let instructions = dockerfile();
    let (_, args) = instructions
        .iter()
        .rfind(|(i, _)| i == "ENTRYPOINT")
        .expect("the Dockerfile has an ENTRYPOINT");
    let argv: Vec<String> = serde_json::from_str(args)
        .expect("ENTRYPOINT in exec form (a JSON array): SIGTERM reaches the proxy");
    let value = argv
        .iter()
        .skip_while(|a| *a != flag)
        .nth(1)
        .unwrap_or_else(|| panic!("ENTRYPOINT {argv:?} has no {flag} ADDR"));
    value
        .parse()
        .unwrap_or_else(|e| panic!("ENTRYPOINT {flag} {value}: {e}"))
}

// The four objects the deployment needs, and nothing unexpected.
#[test]
fn manifest_holds_the_four_objects() {
    let docs = manifest();
    let mut found = kinds(&docs);
    found.sort();
    let expected = [
        ("Deployment", "app-backend"),
        ("Deployment", "switchyard"),
        ("Service", "app-backend"),
        ("Service", "switchyard"),
    ]
    .map(|(k, n)| (k.to_owned(), n.to_owned()));
    assert_eq!(found, expected);
}

// Several replicas, probed on the port the image's ENTRYPOINT listens on, which is also a
// declared container port; metrics on the other declared one.
#[test]
fn proxy_replicas_are_probed_on_the_listen_port() {
    let docs = manifest();
    let proxy = object(&docs, "Deployment", "switchyard");
    let replicas = proxy["spec"]["replicas"].as_i64().expect("replicas is set");
    assert!(
        replicas >= 2,
        "scaled out means two replicas or more, not {replicas}"
    );

    let c = container(proxy);
    let listen = entrypoint_flag("--listen");
    let metrics = entrypoint_flag("--metrics");
    assert!(
        listen.ip().is_unspecified(),
        "the proxy must listen on every interface of the pod, not {listen}"
    );
    let ports = container_ports(c);
    assert!(
        ports.contains(&listen.port()),
        "containerPorts {ports:?} lack the listen port {}",
        listen.port()
    );
    assert!(
        ports.contains(&metrics.port()),
        "containerPorts {ports:?} lack the metrics port {}",
        metrics.port()
    );

    let ready = &c["readinessProbe"]["tcpSocket"]["port"];
    assert_eq!(
        port_of(ready, c),
        Some(listen.port()),
        "readinessProbe.tcpSocket must probe the listen port"
    );
    assert!(
        c["livenessProbe"].as_hash().is_some(),
        "a livenessProbe restarts a stuck proxy"
    );
    assert!(
        c["resources"]["requests"].as_hash().is_some(),
        "resource requests let the scheduler place replicas"
    );

    let non_root = |y: &Yaml| y["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
    assert!(
        non_root(&proxy["spec"]["template"]["spec"]) || non_root(c),
        "the proxy must run as non-root"
    );
}

// Kubernetes waits terminationGracePeriodSeconds for the preStop pause and SIGTERM's drain
// (the grace period, then as long again for what still runs) before it kills the proxy.
#[test]
fn termination_grace_covers_the_drain() {
    let docs = manifest();
    let proxy = object(&docs, "Deployment", "switchyard");
    let pod = &proxy["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds is set (the default, 30 s, is not a statement)");
    let pause = match container(proxy)["lifecycle"]["preStop"]["exec"]["command"].as_vec() {
        Some(cmd) => {
            let words: Vec<&str> = cmd.iter().filter_map(Yaml::as_str).collect();
            assert_eq!(words.first(), Some(&"sleep"), "preStop: {words:?}");
            let seconds = words.get(1).expect("sleep SECONDS");
            seconds.parse::<i64>().expect("sleep SECONDS")
        }
        None => 0,
    };
    let drain = 2 * i64::try_from(proxy_runtime::server::DEFAULT_GRACE_SECONDS).expect("seconds");
    assert!(
        grace > pause + drain,
        "terminationGracePeriodSeconds {grace} <= preStop {pause} s + drain {drain} s"
    );
}

// The Services select the pods of their Deployments; the proxies' Service reaches the listen
// port, the headless one the backends' container port.
#[test]
fn services_select_their_deployments() {
    let docs = manifest();
    let proxy = object(&docs, "Deployment", "switchyard");
    let backend = object(&docs, "Deployment", "app-backend");
    let front = object(&docs, "Service", "switchyard");
    let headless = object(&docs, "Service", "app-backend");
    assert_selects(front, proxy);
    assert_selects(headless, backend);

    let listen = entrypoint_flag("--listen").port();
    let targets: Vec<Option<u16>> = front["spec"]["ports"]
        .as_vec()
        .expect("the Service has ports")
        .iter()
        .map(|p| port_of(&p["targetPort"], container(proxy)))
        .collect();
    assert!(
        targets.contains(&Some(listen)),
        "Service switchyard targets {targets:?}, not the listen port {listen}"
    );
}

// The headless Service is the name the table resolves, on the port it names, and a pod is
// ready (in the DNS answer) when it answers the path the proxies' health check asks for.
#[test]
fn headless_service_is_the_tables_backend_name() {
    let docs = manifest();
    let headless = object(&docs, "Service", "app-backend");
    assert_eq!(
        headless["spec"]["clusterIP"].as_str(),
        Some("None"),
        "headless: DNS answers with every pod"
    );
    let ports = headless["spec"]["ports"]
        .as_vec()
        .expect("the Service has ports");
    let backend = container(object(&docs, "Deployment", "app-backend"));

    let mut names = 0;
    for cluster in ScaleOut::CLUSTERS {
        for b in cluster.backends {
            let Endpoint::Name { host, port } = b.endpoint else {
                panic!("cluster `{}`: {:?} is not a name", cluster.name, b.endpoint);
            };
            names += 1;
            assert_eq!(host, "app-backend", "cluster `{}`", cluster.name);
            let service_port = ports
                .iter()
                .find(|p| p["port"].as_i64() == Some(i64::from(port)))
                .unwrap_or_else(|| {
                    panic!(
                        "Service app-backend has no port {port} (cluster `{}`)",
                        cluster.name
                    )
                });
            // Without targetPort, the Service forwards to the same port.
            let target = match &service_port["targetPort"] {
                Yaml::BadValue => Some(port),
                t => port_of(t, backend),
            };
            let declared = container_ports(backend);
            assert!(
                target.is_some_and(|t| declared.contains(&t)),
                "Service app-backend port {port} targets {target:?}, not a container port of app-backend ({declared:?})"
            );
        }
        if let Some(HealthSpec {
            kind: HealthKind::Http { path, .. },
            ..
        }) = &cluster.health
        {
            assert_eq!(
                backend["readinessProbe"]["httpGet"]["path"].as_str(),
                Some(*path),
                "app-backend's readiness probe should ask what cluster `{}` checks",
                cluster.name
            );
        }
    }
    assert!(names >= 1, "deploy/scale_out.rs declares no backend name");
}

// Two stages: the toolchain of rust-toolchain.toml builds the table's binary with the production
// profile; the runtime stage copies that binary and runs it as a non-root user, exposing the
// ports the ENTRYPOINT serves.
#[test]
fn dockerfile_builds_the_table_in_two_stages() {
    let instructions = dockerfile();
    let froms: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(
        froms.len() >= 2,
        "a build stage and a runtime stage, not {} FROM",
        froms.len()
    );

    let toolchain = read(concat!(env!("CARGO_MANIFEST_DIR"), "/rust-toolchain.toml"));
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .and_then(|l| l.split('"').nth(1))
        .expect("rust-toolchain.toml names a channel");
    let minor = channel.rsplit_once('.').map_or(channel, |(m, _)| m);
    let builder = &instructions[froms[0]].1;
    assert!(
        builder.starts_with(&format!("rust:{minor}")),
        "the build stage `{builder}` should be the toolchain of rust-toolchain.toml ({channel})"
    );

    let build = instructions[froms[0]..froms[1]]
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        build.contains("cmake"),
        "Pingora's zlib-ng build needs cmake"
    );
    let cargo = build
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("the build stage runs cargo build");
    assert!(cargo.contains("--profile production"), "{cargo}");
    assert!(cargo.contains("--bin scale_out"), "{cargo}");

    let last = *froms.last().expect("two stages");
    let runtime = &instructions[last..];
    assert!(
        runtime.iter().any(|(i, a)| i == "COPY"
            && a.starts_with("--from=")
            && a.contains("target/production/scale_out")),
        "the runtime stage copies target/production/scale_out from the build stage"
    );
    let user = runtime
        .iter()
        .rfind(|(i, _)| i == "USER")
        .map(|(_, a)| a.as_str())
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap_or(user);
    assert!(!matches!(uid, "root" | "0"), "USER {user} is root");

    let exposed: Vec<u16> = runtime
        .iter()
        .filter(|(i, _)| i == "EXPOSE")
        .flat_map(|(_, a)| a.split_whitespace())
        .filter_map(|p| p.trim_end_matches("/tcp").parse().ok())
        .collect();
    for flag in ["--listen", "--metrics"] {
        let port = entrypoint_flag(flag).port();
        assert!(
            exposed.contains(&port),
            "EXPOSE {exposed:?} lacks the {flag} port {port}"
        );
    }

    let docs = manifest();
    let ports = container_ports(container(object(&docs, "Deployment", "switchyard")));
    let listen = entrypoint_flag("--listen").port();
    assert!(
        ports.contains(&listen),
        "the Deployment's containerPorts {ports:?} lack the ENTRYPOINT's {listen}"
    );
}

// The table exists, names the headless Service, and serves with the generated `serve()`.
#[test]
fn table_names_app_backend() {
    let source = read(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/scale_out.rs"));
    assert!(
        source.contains("\"app-backend:8080\""),
        "deploy/scale_out.rs names app-backend:8080"
    );
    assert!(
        source.contains("ScaleOut::serve()"),
        "main calls the generated serve()"
    );
    assert!(
        source
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("// cargo run --bin scale_out")),
        "the table starts with the command that runs it"
    );
}
