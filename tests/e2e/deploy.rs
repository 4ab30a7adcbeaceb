//! The Kubernetes manifests in `deploy/`: every file a kustomization names exists, the objects
//! deserialize into the real Kubernetes types, and the properties an operator relies on hold —
//! a hardened gateway pod, minimal RBAC in the workspace namespace only, a NetworkPolicy and a
//! PodDisruptionBudget that select the gateway, one SQLite gateway recreated and three PostgreSQL
//! replicas rolled without losing capacity, a configuration the gateway accepts, database
//! credentials and the shared key-hashing secret only in Secrets, and a sample workspace pod that
//! is a project.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, Pod, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

const GATEWAY_NAMESPACE: &str = "rdev";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every YAML document of a file, as JSON values (empty documents skipped).
fn yaml_docs(text: &str, origin: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{origin} is not valid YAML: {e}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn typed<T: DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{} {} does not deserialize: {e}", v["kind"], v["metadata"]["name"]))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().expect("a string").to_owned()).collect())
        .unwrap_or_default()
}

/// A kustomization directory: its `kustomization.yaml` and the objects of its `resources`
/// (files only; directories are other kustomizations and are not expanded).
struct Kustomization {
    dir: PathBuf,
    spec: Value,
    objects: Vec<Value>,
}

impl Kustomization {
    fn load(dir: &Path) -> Self {
        let path = dir.join("kustomization.yaml");
        let mut docs = yaml_docs(&read(&path), &path.display().to_string());
        assert_eq!(docs.len(), 1, "{} holds one document", path.display());
        let spec = docs.remove(0);
        assert_eq!(spec["kind"], "Kustomization");
        let mut objects = Vec::new();
        for resource in strings(&spec["resources"]) {
            let target = dir.join(&resource);
            assert!(
                target.exists(),
                "{}: resource {resource} does not exist",
                path.display()
            );
            if target.is_file() {
                objects.extend(yaml_docs(&read(&target), &target.display().to_string()));
            }
        }
        Self {
            dir: dir.to_owned(),
            spec,
            objects,
        }
    }

    fn base() -> Self {
        Self::load(&deploy_dir().join("base"))
    }

    fn postgres() -> Self {
        Self::load(&deploy_dir().join("overlays/postgres"))
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn one<T: DeserializeOwned>(&self, kind: &str) -> T {
        let found = self.all(kind);
        assert_eq!(found.len(), 1, "exactly one {kind} in {}", self.dir.display());
        typed(found[0])
    }

    /// The documents of this overlay's patch files (`patches: - path:`) of one kind.
    fn patch_docs(&self, kind: &str) -> Vec<Value> {
        self.spec["patches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["path"].as_str())
            .flat_map(|path| yaml_docs(&read(&self.dir.join(path)), path))
            .filter(|d| d["kind"] == kind)
            .collect()
    }

    /// This overlay's object of `kind`: the base's one, with the overlay's patch files for it
    /// merged in. Inline patches (`target:`) are not applied, so none may target `kind`.
    fn patched(&self, base: &Kustomization, kind: &str) -> Value {
        assert!(
            self.spec["patches"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|p| p["target"]["kind"] != kind),
            "an inline patch of {kind} in {}: apply it here too",
            self.dir.display()
        );
        let found = base.all(kind);
        assert_eq!(found.len(), 1, "exactly one {kind} in {}", base.dir.display());
        let mut object = found[0].clone();
        for patch in self.patch_docs(kind) {
            if patch["metadata"]["name"] == object["metadata"]["name"] {
                strategic_merge(&mut object, &patch);
            }
        }
        object
    }

    /// The configMapGenerator entries: name -> files (key=path or path).
    fn generators(&self) -> BTreeMap<String, Vec<String>> {
        self.spec["configMapGenerator"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| (g["name"].as_str().expect("a name").to_owned(), strings(&g["files"])))
            .collect()
    }

    /// The file a generator source names (`key=path` or `path`).
    fn generator_file(&self, source: &str) -> PathBuf {
        self.dir.join(source.split_once('=').map_or(source, |(_, p)| p))
    }

    /// The gateway configuration the `rdev-config` generator reads.
    fn rdev_toml(&self) -> (PathBuf, toml::Table) {
        let files = &self.generators()["rdev-config"];
        assert_eq!(
            files,
            &vec!["rdev.toml".to_owned()],
            "rdev-config is generated from rdev.toml (key rdev.toml)"
        );
        let path = self.generator_file(&files[0]);
        let table = read(&path)
            .parse::<toml::Table>()
            .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()));
        (path, table)
    }
}

fn gateway_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn gateway_container(d: &Deployment) -> &Container {
    let pod = d.spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1, "one container in the gateway pod");
    &pod.containers[0]
}

fn toml_str<'a>(t: &'a toml::Table, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last().unwrap();
    let mut table = t;
    for p in parents {
        table = table.get(*p)?.as_table()?;
    }
    table.get(*last)?.as_str()
}

/// The properties every variant of the gateway Deployment must have.
fn check_gateway_deployment(d: &Deployment) {
    let spec = &d.spec;
    let labels = gateway_labels(d);
    assert!(
        selects(spec.selector.match_labels.as_ref().unwrap(), &labels),
        "the selector matches the pod template"
    );
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("rdev"));
    assert_eq!(
        pod.automount_service_account_token,
        Some(true),
        "the backend uses the service account token"
    );
    assert!(!pod.host_network.unwrap_or(false) && !pod.host_pid.unwrap_or(false) && !pod.host_ipc.unwrap_or(false));
    let psc = pod.security_context.as_ref().expect("a pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(10001));
    assert_eq!(psc.run_as_group, Some(10001));
    assert_eq!(psc.fs_group, Some(10001));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );

    let c = gateway_container(d);
    let port = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .expect("a port named http");
    assert_eq!(port.container_port, 8080);
    let env: BTreeMap<_, _> = c.env.iter().flatten().map(|e| (e.name.as_str(), e)).collect();
    assert_eq!(
        env["RDEV_LISTEN"].value.as_deref(),
        Some("0.0.0.0:8080"),
        "listen on every interface in a pod"
    );
    assert_eq!(env["RDEV_DATA_DIR"].value.as_deref(), Some("/var/lib/rdev"));
    assert_eq!(env["RDEV_LOG_FORMAT"].value.as_deref(), Some("json"));

    for (probe, path) in [(&c.liveness_probe, "/health"), (&c.readiness_probe, "/ready")] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("an HTTP probe on {path}"));
        assert_eq!(get.path.as_deref(), Some(path));
        assert!(
            get.port == IntOrString::String("http".into()) || get.port == IntOrString::Int(8080),
            "the {path} probe targets the http port"
        );
    }

    let resources = c.resources.as_ref().expect("resources");
    for (what, map) in [("requests", &resources.requests), ("limits", &resources.limits)] {
        let map = map.as_ref().unwrap_or_else(|| panic!("resource {what}"));
        for r in ["cpu", "memory"] {
            assert!(map.contains_key(r), "resource {what} for {r}");
        }
    }

    let sc = c.security_context.as_ref().expect("a container securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_ne!(sc.privileged, Some(true));
    let drop = sc
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.clone())
        .unwrap_or_default();
    assert_eq!(drop, vec!["ALL".to_owned()], "every capability dropped");
    assert!(
        sc.capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_none_or(|a| a.is_empty())
    );

    let volumes: BTreeMap<_, _> = pod.volumes.iter().flatten().map(|v| (v.name.as_str(), v)).collect();
    assert!(volumes.values().all(|v| v.host_path.is_none()), "no hostPath volume");
    let mounts: BTreeMap<_, _> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.as_str(), m))
        .collect();
    assert!(
        mounts
            .values()
            .all(|m| m.sub_path.is_none() && m.sub_path_expr.is_none()),
        "no subPath mounts: they never see ConfigMap updates"
    );
    for m in mounts.values() {
        assert!(volumes.contains_key(m.name.as_str()), "mount {} has a volume", m.name);
    }
    // A read-only root: everything written goes to a volume.
    for path in ["/var/lib/rdev", "/tmp"] {
        assert!(mounts.contains_key(path), "a volume at {path}");
    }
    let config = volumes[mounts["/etc/rdev/config"].name.as_str()];
    assert_eq!(config.config_map.as_ref().map(|c| c.name.as_str()), Some("rdev-config"));
    let args = c.args.clone().unwrap_or_default();
    let at = args.iter().position(|a| a == "--config").expect("--config in the args");
    assert_eq!(args[0], "serve");
    assert_eq!(args[at + 1], "/etc/rdev/config/rdev.toml");
    let plugins = volumes[mounts["/etc/rdev/plugins"].name.as_str()];
    assert!(
        plugins.projected.is_some() || plugins.config_map.is_some(),
        "plugins come from ConfigMaps"
    );
}

/// The ConfigMaps projected into the plugin directory, with whether each is optional.
fn plugin_sources(d: &Deployment) -> BTreeMap<String, bool> {
    let pod = d.spec.template.spec.as_ref().unwrap();
    let c = gateway_container(d);
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/etc/rdev/plugins")
        .unwrap();
    let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
    let projected = volume.projected.as_ref().expect("a projected plugin volume");
    projected
        .sources
        .iter()
        .flatten()
        .map(|s| {
            let cm = s.config_map.as_ref().expect("only ConfigMap sources");
            (cm.name.clone(), cm.optional.unwrap_or(false))
        })
        .collect()
}

#[test]
fn kustomizations_reference_existing_files() {
    let base = Kustomization::base();
    // Every manifest in the base is part of it.
    let listed: BTreeSet<String> = strings(&base.spec["resources"]).into_iter().collect();
    for entry in std::fs::read_dir(&base.dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name),
                "deploy/base/{name} is not in the kustomization's resources"
            );
        }
    }
    // The base spans two namespaces, so kustomize's namespace transformer must stay off and each
    // namespaced object names its own.
    assert!(
        base.spec.get("namespace").is_none(),
        "a `namespace:` field would move the workspace Role"
    );
    for o in &base.objects {
        if o["kind"] != "Namespace" {
            assert!(
                o["metadata"]["namespace"].is_string(),
                "{} {} names its namespace",
                o["kind"],
                o["metadata"]["name"]
            );
        }
    }
    let namespaces: BTreeSet<String> = base
        .all("Namespace")
        .into_iter()
        .map(|n| typed::<Namespace>(n).metadata.name.unwrap())
        .collect();
    assert_eq!(
        namespaces,
        BTreeSet::from(["rdev".to_owned(), "rdev-workspaces".to_owned()])
    );

    // The image is set through `images:` and names the Deployment's image.
    let deployment: Deployment = base.one("Deployment");
    let image = gateway_container(&deployment).image.clone().unwrap();
    let images = base.spec["images"].as_array().expect("images:");
    assert!(
        images.iter().any(|i| image.split(':').next() == i["name"].as_str()),
        "images: names {image}"
    );

    // Generated ConfigMaps keep fixed names, or a change would roll the pod instead of reloading.
    for k in [&base, &Kustomization::postgres()] {
        assert_eq!(
            k.spec["generatorOptions"]["disableNameSuffixHash"],
            true,
            "{}: generated names without hash",
            k.dir.display()
        );
    }
    // Generator sources exist, except the plugin components (build output, not in git), which
    // live in plugins/, whose .gitignore keeps them out of git.
    for (name, files) in base.generators() {
        assert!(!files.is_empty(), "{name} has files");
        for f in files {
            let path = base.generator_file(&f);
            if name.starts_with("rdev-plugin-") {
                assert!(f.starts_with("plugins/") && f.ends_with(".wasm"), "{name}: {f}");
            } else {
                assert!(path.is_file(), "{name}: {} is missing", path.display());
            }
        }
    }
    assert!(
        read(&base.dir.join("plugins/.gitignore"))
            .lines()
            .any(|l| l.trim() == "*.wasm")
    );
    assert!(base.dir.join("plugins/README.md").is_file());

    // The overlay builds on the base and its patches exist.
    let pg = Kustomization::postgres();
    assert_eq!(strings(&pg.spec["resources"]), vec!["../../base".to_owned()]);
    for p in pg.spec["patches"].as_array().expect("patches") {
        if let Some(path) = p["path"].as_str() {
            assert!(pg.dir.join(path).is_file(), "patch {path} exists");
        }
    }
    for (_, files) in pg.generators() {
        for f in files {
            assert!(pg.generator_file(&f).is_file(), "{f} exists");
        }
    }
}

#[test]
fn gateway_deployment_is_hardened() {
    let base = Kustomization::base();
    let d: Deployment = base.one("Deployment");
    assert_eq!(d.metadata.namespace.as_deref(), Some(GATEWAY_NAMESPACE));
    check_gateway_deployment(&d);
    // SQLite needs a volume that outlives the pod.
    let pod = d.spec.template.spec.clone().unwrap();
    let data = gateway_container(&d)
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/var/lib/rdev")
        .unwrap();
    let volume = pod.volumes.iter().flatten().find(|v| v.name == data.name).unwrap();
    let claim = volume
        .persistent_volume_claim
        .as_ref()
        .expect("the SQLite data directory is on a PVC");
    let pvc: PersistentVolumeClaim = base.one("PersistentVolumeClaim");
    assert_eq!(pvc.metadata.name.as_deref(), Some(claim.claim_name.as_str()));
    assert_eq!(pvc.metadata.namespace.as_deref(), Some(GATEWAY_NAMESPACE));
}

/// The PostgreSQL overlay's Deployment: the base's with the overlay's patch.
fn postgres_deployment() -> Deployment {
    typed(&Kustomization::postgres().patched(&Kustomization::base(), "Deployment"))
}

#[test]
fn sqlite_base_runs_one_gateway_and_recreates_it() {
    let d: Deployment = Kustomization::base().one("Deployment");
    // A SQLite file serves one gateway process: a second one refuses to start (<db>.lock).
    assert_eq!(d.spec.replicas, Some(1), "one gateway per SQLite file");
    let strategy = d.spec.strategy.clone().expect("a strategy");
    assert_eq!(
        strategy.type_.as_deref(),
        Some("Recreate"),
        "the old pod must release the volume and the lock before the new one starts"
    );
    assert!(strategy.rolling_update.is_none());
}

#[test]
fn postgres_overlay_runs_three_replicas_and_rolls_without_losing_capacity() {
    let d = postgres_deployment();
    check_gateway_deployment(&d);
    assert_eq!(d.spec.replicas, Some(3), "three replicas share the PostgreSQL database");
    let strategy = d.spec.strategy.clone().expect("a strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.expect("rollingUpdate parameters");
    assert_eq!(
        rolling.max_unavailable,
        Some(IntOrString::Int(0)),
        "no old pod stops before its successor is ready"
    );
    assert_eq!(
        rolling.max_surge,
        Some(IntOrString::Int(1)),
        "one pod more than replicas during a rollout"
    );
    // maxUnavailable: 0 counts ready pods: a pod is ready when /ready says so, which includes
    // its lease being fresh.
    let readiness = gateway_container(&d)
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("an HTTP readiness probe");
    assert_eq!(readiness.path.as_deref(), Some("/ready"));

    // Losing a node should lose one replica where the cluster has nodes enough.
    let pod = d.spec.template.spec.as_ref().unwrap();
    let spread = pod
        .topology_spread_constraints
        .iter()
        .flatten()
        .find(|t| t.topology_key == "kubernetes.io/hostname")
        .expect("replicas spread over nodes");
    assert_eq!(
        spread.when_unsatisfiable, "ScheduleAnyway",
        "a small cluster still runs every replica"
    );
    assert!(
        selects(
            spread
                .label_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .expect("matchLabels"),
            &gateway_labels(&d)
        ),
        "the spread counts the gateway pods"
    );
}

#[test]
fn service_targets_the_http_port() {
    let base = Kustomization::base();
    let d: Deployment = base.one("Deployment");
    let s: Service = base.one("Service");
    assert_eq!(s.metadata.namespace, d.metadata.namespace);
    let spec = s.spec.unwrap();
    assert!(matches!(spec.type_.as_deref(), None | Some("ClusterIP")));
    assert!(
        selects(&spec.selector.unwrap(), &gateway_labels(&d)),
        "the Service selects the gateway pod"
    );
    let ports = spec.ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 80);
    let target = ports[0].target_port.clone().expect("a targetPort");
    let container_port = gateway_container(&d)
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .unwrap();
    assert!(
        target == IntOrString::String("http".into()) || target == IntOrString::Int(container_port.container_port),
        "targetPort {target:?} is the container's http port"
    );
}

#[test]
fn rbac_is_minimal_and_confined_to_the_workspace_namespace() {
    let base = Kustomization::base();
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        assert!(
            base.all(kind).is_empty(),
            "no {kind}: the gateway needs nothing cluster-wide"
        );
    }
    let (_, config) = base.rdev_toml();
    let workspaces = toml_str(&config, &["backend", "kubernetes", "namespace"]).expect("backend.kubernetes.namespace");

    let role: Role = base.one("Role");
    assert_eq!(
        role.metadata.namespace.as_deref(),
        Some(workspaces),
        "the Role lives where the workspace pods are"
    );
    let mut rules = BTreeSet::new();
    for rule in role.rules.unwrap() {
        assert_eq!(rule.api_groups, Some(vec![String::new()]), "core API group only");
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        let verbs: BTreeSet<String> = rule.verbs.into_iter().collect();
        for resource in rule.resources.unwrap() {
            assert!(
                !resource.contains('*') && !verbs.iter().any(|v| v.contains('*')),
                "no wildcards"
            );
            assert!(rules.insert((resource, verbs.clone())), "one rule per resource");
        }
    }
    let set = |r: &str, v: &[&str]| (r.to_owned(), v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    let expected = BTreeSet::from([
        set("pods", &["get", "list", "watch"]),
        // WebSocket exec is a GET (verb `get`); 1.35+ also checks `create` (see rbac.yaml).
        set("pods/exec", &["create", "get"]),
        set("configmaps", &["get", "list", "watch"]),
    ]);
    assert_eq!(rules, expected);

    let sa: ServiceAccount = base.one("ServiceAccount");
    let d: Deployment = base.one("Deployment");
    assert_eq!(sa.metadata.namespace, d.metadata.namespace);
    assert_eq!(
        sa.metadata.name.as_deref(),
        d.spec.template.spec.unwrap().service_account_name.as_deref()
    );

    let binding: RoleBinding = base.one("RoleBinding");
    assert_eq!(binding.metadata.namespace, role.metadata.namespace);
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), sa.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace, sa.metadata.namespace);
}

/// (protocol, port) pairs of a policy's egress rules.
fn egress_ports(np: &NetworkPolicy) -> BTreeSet<(String, i32)> {
    let spec = np.spec.as_ref().unwrap();
    let mut ports = BTreeSet::new();
    for rule in spec.egress.iter().flatten() {
        let rule_ports = rule.ports.as_ref().expect("every egress rule is limited to ports");
        for p in rule_ports {
            let IntOrString::Int(n) = p.port.clone().expect("a port") else {
                panic!("numeric egress ports")
            };
            ports.insert((p.protocol.clone().unwrap_or_else(|| "TCP".into()), n));
        }
    }
    ports
}

#[test]
fn network_policy_admits_http_only_and_limits_egress() {
    let base = Kustomization::base();
    let d: Deployment = base.one("Deployment");
    let np: NetworkPolicy = base.one("NetworkPolicy");
    assert_eq!(np.metadata.namespace, d.metadata.namespace);
    let spec = np.spec.clone().unwrap();
    assert!(
        selects(
            &spec
                .pod_selector
                .clone()
                .unwrap_or_default()
                .match_labels
                .unwrap_or_default(),
            &gateway_labels(&d)
        ),
        "the NetworkPolicy selects the gateway pod"
    );
    let types: BTreeSet<String> = spec.policy_types.clone().unwrap().into_iter().collect();
    assert_eq!(types, BTreeSet::from(["Ingress".to_owned(), "Egress".to_owned()]));
    let ingress = spec.ingress.clone().unwrap();
    assert!(!ingress.is_empty());
    for rule in &ingress {
        assert!(
            rule.from.as_ref().is_some_and(|f| !f.is_empty()),
            "ingress from named peers only"
        );
        let ports = rule.ports.clone().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(
            ports[0].port,
            Some(IntOrString::Int(8080)),
            "ingress to the http port only"
        );
    }
    let allowed: BTreeSet<(String, i32)> = [("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)]
        .into_iter()
        .map(|(p, n)| (p.to_owned(), n))
        .collect();
    assert_eq!(
        egress_ports(&np),
        allowed,
        "egress: DNS and the API server (443/6443) only"
    );
}

/// The gateway's budget: in the gateway's namespace, selecting its pods, one disruption at a time.
fn check_disruption_budget(pdb: &PodDisruptionBudget, d: &Deployment) {
    assert_eq!(pdb.metadata.namespace, d.metadata.namespace);
    let spec = pdb.spec.clone().unwrap();
    assert!(
        selects(&spec.selector.unwrap().match_labels.unwrap(), &gateway_labels(d)),
        "the PodDisruptionBudget selects the gateway pods"
    );
    assert!(spec.min_available.is_none(), "a budget in maxUnavailable only");
    assert_eq!(
        spec.max_unavailable,
        Some(IntOrString::Int(1)),
        "exactly one disruption allowed"
    );
    // A pod that is not ready (a stale lease, a database outage) may always be evicted.
    assert_eq!(spec.unhealthy_pod_eviction_policy.as_deref(), Some("AlwaysAllow"));
}

#[test]
fn disruption_budget_selects_the_gateway_and_never_blocks_drains() {
    let base = Kustomization::base();
    let d: Deployment = base.one("Deployment");
    // With one replica, minAvailable: 1 (or maxUnavailable: 0) would block node drains forever.
    check_disruption_budget(&base.one("PodDisruptionBudget"), &d);
}

#[test]
fn postgres_disruption_budget_evicts_one_replica_at_a_time() {
    let pg = Kustomization::postgres();
    let d = postgres_deployment();
    let pdb: PodDisruptionBudget = typed(&pg.patched(&Kustomization::base(), "PodDisruptionBudget"));
    check_disruption_budget(&pdb, &d);
    let Some(IntOrString::Int(down)) = pdb.spec.unwrap().max_unavailable else {
        unreachable!()
    };
    let replicas = d.spec.replicas.unwrap();
    assert!(
        replicas - down >= 2,
        "a drain leaves at least two of {replicas} replicas serving"
    );
}

#[test]
fn config_map_configures_the_kubernetes_backend_and_the_default_plugins() {
    let base = Kustomization::base();
    let (_, config) = base.rdev_toml();
    assert_eq!(toml_str(&config, &["backend", "kind"]), Some("kubernetes"));
    assert!(config.get("database_url").is_none(), "no database URL in a ConfigMap");
    assert_eq!(
        toml_str(&config, &["plugins_dir"]),
        Some("/etc/rdev/plugins"),
        "plugins_dir is the plugin volume's mount"
    );

    // The default plugins, exactly as the gateway would load them without a [[plugins]] list.
    let entries = config["plugins"].as_array().expect("[[plugins]] entries");
    let configured: BTreeSet<(String, String, String)> = entries
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("name"), s("world"), s("file"))
        })
        .collect();
    let defaults: BTreeSet<(String, String, String)> = rdev::plugins::manifest::defaults()
        .into_iter()
        .map(|m| (m.name, m.world.as_str().to_owned(), m.file.display().to_string()))
        .collect();
    assert_eq!(configured, defaults);

    // Each component file reaches the plugin directory through a ConfigMap of its own.
    let d: Deployment = base.one("Deployment");
    let sources = plugin_sources(&d);
    let generators = base.generators();
    for (_, _, file) in &configured {
        let (name, _) = generators
            .iter()
            .find(|(_, files)| files.iter().any(|f| f.rsplit('/').next() == Some(file.as_str())))
            .unwrap_or_else(|| panic!("no generated ConfigMap holds {file}"));
        assert_eq!(
            sources.get(name),
            Some(&false),
            "{name} is a required source of the plugin volume"
        );
    }
    for (name, optional) in &sources {
        assert!(
            *optional || generators.contains_key(name),
            "{name} is generated by the base or optional"
        );
    }

    // Discovery and the backend agree on the label prefix.
    let prefix = toml_str(&config, &["backend", "kubernetes", "label_prefix"]).expect("label_prefix");
    let discovery = entries
        .iter()
        .find(|p| p["name"].as_str() == Some("label-discovery"))
        .unwrap();
    assert_eq!(discovery["config"]["prefix"].as_str(), Some(prefix));

    // Running commands get shutdown_grace_secs after SIGTERM; the kubelet waits longer.
    let grace = config["shutdown_grace_secs"].as_integer().expect("shutdown_grace_secs");
    let termination = d.spec.template.spec.unwrap().termination_grace_period_seconds.unwrap();
    assert!(
        termination > grace,
        "terminationGracePeriodSeconds {termination} > shutdown_grace_secs {grace}"
    );
}

/// The gateway itself accepts both configurations. Needs the Kubernetes backend's config schema
/// (`[backend] kind = "kubernetes"`, `[backend.kubernetes]`).
#[test]
fn configs_are_accepted_by_the_gateway() {
    for k in [Kustomization::base(), Kustomization::postgres()] {
        let (path, _) = k.rdev_toml();
        let config = rdev::config::Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        config.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// A minimal strategic merge: maps merge, `null` deletes, lists of named objects merge by name.
/// Enough for the patches in deploy/ (containers, env, volumeMounts, volumes).
fn strategic_merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match (v, b.get_mut(k)) {
                    (Value::Null, _) => {
                        b.remove(k);
                    }
                    (v, Some(existing)) => strategic_merge(existing, v),
                    (v, None) => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(p)) if p.iter().all(|e| e["name"].is_string()) => {
            for pe in p {
                match b.iter_mut().find(|be| be["name"] == pe["name"]) {
                    Some(be) => strategic_merge(be, pe),
                    None => b.push(pe.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[test]
fn postgres_overlay_takes_credentials_from_secrets() {
    let base = Kustomization::base();
    let pg = Kustomization::postgres();
    let patches = pg.spec["patches"].as_array().expect("patches").clone();

    // The effective Deployment: still the hardened pod, now with the database URL from the
    // Secret.
    assert_eq!(pg.patch_docs("Deployment").len(), 1);
    let d = postgres_deployment();
    check_gateway_deployment(&d);
    let c = gateway_container(&d);
    let url = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "RDEV_DATABASE_URL")
        .expect("RDEV_DATABASE_URL");
    assert!(url.value.is_none(), "the database URL is not written into the pod spec");
    let secret_ref = url
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("from a Secret");
    assert_eq!(
        (secret_ref.name.as_str(), secret_ref.key.as_str()),
        ("rdev-database", "url")
    );

    let (_, config) = pg.rdev_toml();
    assert!(config.get("database_url").is_none(), "no database URL in the ConfigMap");
    let pod = d.spec.template.spec.as_ref().unwrap();
    // Without SQLite the data directory holds only caches: no volume claim (a ReadWriteOnce
    // claim could not be shared by the replicas anyway).
    let data = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/var/lib/rdev")
        .unwrap();
    let data = pod.volumes.iter().flatten().find(|v| v.name == data.name).unwrap();
    assert!(data.persistent_volume_claim.is_none() && data.empty_dir.is_some());
    let deleted = pg.patch_docs("PersistentVolumeClaim");
    assert!(
        deleted
            .iter()
            .any(|p| p["$patch"] == "delete" && p["metadata"]["name"] == "rdev-data")
    );

    // The configuration is the base's plus the key-hash secret file and the leases, nothing else.
    // `[replicas]` is exempt: its lease timing matters between replicas sharing PostgreSQL, while
    // the base's single SQLite process has no peer to judge it, so the two need not agree.
    let (_, mut base_config) = base.rdev_toml();
    let mut pg_config = config.clone();
    pg_config["auth"].as_table_mut().unwrap().remove("key_hash_secret_file");
    assert!(pg_config.remove("replicas").is_some(), "[replicas] in the overlay");
    base_config.remove("replicas");
    base_config["auth"]
        .as_table_mut()
        .unwrap()
        .remove("key_hash_secret_file");
    assert_eq!(
        pg_config, base_config,
        "overlays/postgres/rdev.toml drifted from base/rdev.toml"
    );

    // Egress to PostgreSQL, added to the base policy.
    let mut np = base.all("NetworkPolicy")[0].clone();
    let np_patch = patches
        .iter()
        .find(|p| p["target"]["kind"] == "NetworkPolicy")
        .expect("a NetworkPolicy patch");
    for op in yaml_docs(np_patch["patch"].as_str().unwrap(), "NetworkPolicy patch")
        .into_iter()
        .flat_map(|d| d.as_array().cloned().unwrap_or_default())
    {
        assert_eq!(
            (op["op"].as_str(), op["path"].as_str()),
            (Some("add"), Some("/spec/egress/-"))
        );
        np["spec"]["egress"].as_array_mut().unwrap().push(op["value"].clone());
    }
    let np: NetworkPolicy = typed(&np);
    assert!(
        egress_ports(&np).contains(&("TCP".to_owned(), 5432)),
        "egress to PostgreSQL"
    );

    // No credentials in any file of the overlay.
    for entry in std::fs::read_dir(&pg.dir).unwrap() {
        let path = entry.unwrap().path();
        for line in read(&path).lines().filter(|l| !l.trim_start().starts_with('#')) {
            assert!(
                !line.contains("postgres://") && !line.contains("postgresql://"),
                "{}: {line}",
                path.display()
            );
        }
    }
}

#[test]
fn postgres_replicas_share_the_key_hash_secret_from_a_secret() {
    let pg = Kustomization::postgres();
    let d = postgres_deployment();
    let c = gateway_container(&d);
    let pod = d.spec.template.spec.as_ref().unwrap();
    let (_, config) = pg.rdev_toml();
    // Unset, every pod would create a secret of its own in its data directory, and a key created
    // through one replica would be unknown to the others.
    let secret_file = toml_str(&config, &["auth", "key_hash_secret_file"]).expect("[auth] key_hash_secret_file");
    let data_dir = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "RDEV_DATA_DIR")
        .and_then(|e| e.value.as_deref())
        .expect("RDEV_DATA_DIR");
    assert!(
        !Path::new(secret_file).starts_with(data_dir),
        "{secret_file} is not in the per-pod data directory {data_dir}"
    );
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(secret_file).parent() == Some(Path::new(&m.mount_path)))
        .unwrap_or_else(|| panic!("a volume mounted at the directory of {secret_file}"));
    assert_eq!(mount.read_only, Some(true));
    let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
    let secret = volume.secret.as_ref().expect("the key-hash secret comes from a Secret");
    assert_eq!(secret.secret_name.as_deref(), Some("rdev-key-hash"));
    assert_ne!(
        secret.optional,
        Some(true),
        "a pod without the shared secret must not start"
    );
    let file_name = Path::new(secret_file).file_name().unwrap().to_str().unwrap();
    let items = secret.items.clone().unwrap_or_default();
    assert!(
        items.is_empty() || items.iter().any(|i| i.path == file_name),
        "the Secret provides {file_name}"
    );
}

#[test]
fn example_workspace_pod_and_projects_config_map_match_the_backend() {
    let base = Kustomization::base();
    let (_, config) = base.rdev_toml();
    let namespace = toml_str(&config, &["backend", "kubernetes", "namespace"]).unwrap();
    let prefix = toml_str(&config, &["backend", "kubernetes", "label_prefix"]).unwrap();
    let examples = deploy_dir().join("examples");

    let docs = yaml_docs(&read(&examples.join("workspace-pod.yaml")), "workspace-pod.yaml");
    assert_eq!(docs.len(), 1);
    let pod: Pod = typed(&docs[0]);
    assert_eq!(pod.metadata.namespace.as_deref(), Some(namespace));
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(
        labels.get(&format!("{prefix}/project")).map(String::as_str),
        Some("true")
    );
    let name = &labels[&format!("{prefix}/name")];
    assert!(rdev::names::is_valid_name(name), "{name} is a valid project name");
    let annotations = pod.metadata.annotations.clone().unwrap();
    let workspace = &annotations[&format!("{prefix}/workspace")];
    assert!(workspace.starts_with('/'));
    let spec = pod.spec.unwrap();
    assert!(!spec.host_network.unwrap_or(false));
    let main = match annotations.get(&format!("{prefix}/container")) {
        Some(c) => spec
            .containers
            .iter()
            .find(|x| &x.name == c)
            .expect("the annotated container exists"),
        None => &spec.containers[0],
    };
    let mount = main
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| &m.mount_path == workspace)
        .expect("a volume at the workspace");
    let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
    assert!(volume.host_path.is_none());
    assert_ne!(main.security_context.as_ref().and_then(|s| s.privileged), Some(true));

    let docs = yaml_docs(&read(&examples.join("rdev-projects.yaml")), "rdev-projects.yaml");
    assert_eq!(docs.len(), 1);
    let cm: ConfigMap = typed(&docs[0]);
    assert_eq!(cm.metadata.namespace.as_deref(), Some(namespace));
    assert_eq!(
        cm.metadata.name.as_deref(),
        toml_str(&config, &["backend", "kubernetes", "config_map"])
    );
    let data = cm.data.unwrap();
    assert!(!data.is_empty());
    for (project, entry) in data {
        assert!(
            rdev::names::is_valid_name(&project),
            "{project} is a valid project name"
        );
        let entry: BTreeMap<String, String> =
            serde_saphyr::from_str(&entry).unwrap_or_else(|e| panic!("entry {project}: {e}"));
        assert_eq!(
            entry.get("pod").map(String::as_str),
            pod.metadata.name.as_deref(),
            "entry {project} names the example pod"
        );
        for key in entry.keys() {
            assert!(
                ["pod", "container", "workspace", "description"].contains(&key.as_str()),
                "entry {project}: unknown field {key}"
            );
        }
    }
}
