//! The two resource kinds the fake serves, and how a stored object is rendered as Kubernetes JSON.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodCondition,
    PodSpec as K8sPodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// A pod to create or update: always `Running`, one container per name, every container image `fake`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// Names of `spec.containers`, in order.
    pub containers: Vec<String>,
}

impl PodSpec {
    /// A pod with this name and nothing else; add a container before exec-ing into it.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Adds (or replaces) a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds (or replaces) an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Appends a container.
    pub fn container(mut self, name: impl Into<String>) -> Self {
        self.containers.push(name.into());
        self
    }
}

/// The resource kinds the fake knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Pod,
    ConfigMap,
}

impl Kind {
    /// The kind named by a URL path segment.
    pub(crate) fn from_plural(plural: &str) -> Option<Self> {
        match plural {
            "pods" => Some(Self::Pod),
            "configmaps" => Some(Self::ConfigMap),
            _ => None,
        }
    }

    /// The `kind` of an object.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::ConfigMap => "ConfigMap",
        }
    }

    /// The `kind` of a list response.
    pub(crate) fn list_kind(self) -> &'static str {
        match self {
            Self::Pod => "PodList",
            Self::ConfigMap => "ConfigMapList",
        }
    }
}

/// What a create or update carries for each kind.
pub(crate) enum Content {
    Pod(PodSpec),
    ConfigMap(BTreeMap<String, String>),
}

impl Content {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::Pod(_) => Kind::Pod,
            Self::ConfigMap(_) => Kind::ConfigMap,
        }
    }
}

/// Server-assigned identity of an object; kept across updates so uid, creation time and pod IP stay put.
#[derive(Clone, Copy)]
pub(crate) struct Identity {
    pub(crate) serial: u64,
    pub(crate) created: Timestamp,
}

impl Identity {
    fn uid(self) -> String {
        format!("00000000-0000-4000-8000-{:012x}", self.serial)
    }

    fn pod_ip(self) -> String {
        format!("10.244.{}.{}", (self.serial >> 8) & 0xff, self.serial & 0xff)
    }
}

/// One version of an object, as the store keeps it and the API returns it.
pub(crate) struct Stored {
    pub(crate) kind: Kind,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) identity: Identity,
    pub(crate) json: Value,
}

impl Stored {
    /// Renders `content` with its identity at resource version `rv`.
    pub(crate) fn render(namespace: &str, name: &str, content: Content, identity: Identity, rv: u64) -> Self {
        let kind = content.kind();
        let (labels, json) = match content {
            Content::Pod(spec) => (spec.labels.clone(), to_json(pod(namespace, spec, identity, rv))),
            Content::ConfigMap(data) => {
                let map = ConfigMap {
                    metadata: meta(namespace, name, identity, rv),
                    data: Some(data),
                    ..Default::default()
                };
                (BTreeMap::new(), to_json(map))
            }
        };
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            labels,
            identity,
            json,
        }
    }

    /// The same object stamped with another resource version, as deletions are reported.
    pub(crate) fn at_version(&self, rv: u64) -> Self {
        let mut json = self.json.clone();
        json["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        Self {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            json,
            ..*self
        }
    }
}

fn to_json(object: impl k8s_openapi::serde::Serialize) -> Value {
    serde_json::to_value(object).expect("k8s-openapi objects serialize")
}

fn meta(namespace: &str, name: &str, identity: Identity, rv: u64) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        uid: Some(identity.uid()),
        resource_version: Some(rv.to_string()),
        creation_timestamp: Some(Time(identity.created)),
        ..Default::default()
    }
}

fn pod(namespace: &str, spec: PodSpec, identity: Identity, rv: u64) -> Pod {
    let mut metadata = meta(namespace, &spec.name, identity, rv);
    metadata.labels = Some(spec.labels).filter(|m| !m.is_empty());
    metadata.annotations = Some(spec.annotations).filter(|m| !m.is_empty());
    let containers = spec.containers.iter().map(|name| Container {
        name: name.clone(),
        image: Some("fake".into()),
        ..Default::default()
    });
    Pod {
        metadata,
        spec: Some(K8sPodSpec {
            containers: containers.collect(),
            ..Default::default()
        }),
        status: Some(running_status(&spec.containers, identity)),
    }
}

/// A status that readiness checks accept: phase Running, Ready, every container running.
fn running_status(containers: &[String], identity: Identity) -> PodStatus {
    let started = Time(identity.created);
    let container_statuses = containers.iter().map(|name| ContainerStatus {
        name: name.clone(),
        image: "fake".into(),
        image_id: String::new(),
        ready: true,
        started: Some(true),
        restart_count: 0,
        state: Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started.clone()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some(identity.pod_ip()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        container_statuses: Some(container_statuses.collect()),
        start_time: Some(started),
        ..Default::default()
    }
}
