//! Tests of the watcher's state machine against a scripted Nomad, and the helpers they share.

use super::*;
use crate::nomad::config::Config;
use crate::nomad::fake::{FakeApi, Script};
use crate::nomad::watch::health::HealthWatch;
use crate::nomad::watch::wire::Registration;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

mod backoff;
mod errors;
mod relist;
mod stream;

const MS: Duration = Duration::from_millis(1);

fn settings() -> Settings {
    let mut s = Config::default().resolve(&BTreeMap::new()).unwrap();
    s.backoff_min = 100 * MS;
    s.backoff_max = 10_000 * MS;
    s
}

fn reg(id: &str, name: &str, port: i64, index: u64) -> Registration {
    Registration {
        id: id.into(),
        service_name: name.into(),
        namespace: "default".into(),
        job_id: "job".into(),
        alloc_id: format!("alloc-{id}"),
        address: "10.0.0.1".into(),
        port,
        create_index: index,
        modify_index: index,
        ..Registration::default()
    }
}

fn svc_event(kind: &str, r: &Registration, index: u64) -> String {
    let payload = serde_json::json!({"Service": {
        "ID": r.id, "ServiceName": r.service_name, "Namespace": r.namespace,
        "JobID": r.job_id, "AllocID": r.alloc_id, "Address": r.address, "Port": r.port,
        "CreateIndex": r.create_index, "ModifyIndex": r.modify_index}});
    format!(
        r#"{{"Topic":"Service","Type":"{kind}","Key":"{}","Namespace":"default","Index":{index},"Payload":{payload}}}"#,
        r.id
    )
}

fn job_event(job: &str, index: u64) -> String {
    format!(
        r#"{{"Topic":"Job","Type":"JobRegistered","Key":"{job}","Namespace":"default","Index":{index},"Payload":{{"Job":{{"ID":"{job}","Namespace":"default","Version":1,"CreateIndex":2}}}}}}"#
    )
}

fn frame(index: u64, events: &[String]) -> Bytes {
    Bytes::from(format!(
        "{{\"Index\":{index},\"Events\":[{}]}}\n",
        events.join(",")
    ))
}

fn body(chunks: Vec<Bytes>, hang: bool) -> Script {
    Script::Body { chunks, hang }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Invalidate for Recorder {
    fn job_event(&self, ns: &str, job: &str, version: u64, _ci: u64, deleted: bool) {
        self.0
            .lock()
            .unwrap()
            .push(format!("job {ns}/{job} v{version} deleted={deleted}"));
    }
    fn alloc_planned(&self, _ns: &str, _job: &str, alloc: &str) {
        self.0.lock().unwrap().push(format!("alloc {alloc}"));
    }
    fn server_reset(&self) {
        self.0.lock().unwrap().push("reset".into());
    }
}

struct Harness {
    api: FakeApi,
    lp: ScopeLoop<FakeApi>,
    state: Option<State<crate::nomad::fake::FakeStream>>,
    health: HealthWatch,
    rec: Arc<Recorder>,
}

impl Harness {
    fn new() -> Harness {
        let api = FakeApi::default();
        let board = HealthBoard::new(["*".to_string()]);
        let rec = Arc::new(Recorder::default());
        let lp = ScopeLoop::new(
            api.clone(),
            Scope::All,
            &settings(),
            board.clone(),
            Some(rec.clone()),
        );
        Harness {
            api,
            lp,
            state: Some(State::Relist),
            health: board.watch(),
            rec,
        }
    }

    fn set(&self, index: u64, regs: &[Registration]) {
        let mut st = self.api.state();
        st.index = index;
        st.services.clear();
        for r in regs {
            st.services
                .entry((r.namespace.clone(), r.service_name.clone()))
                .or_default()
                .push(r.clone());
        }
    }

    fn script(&self, s: Script) {
        self.api.state().streams.push_back(s);
    }

    /// Steps until `n` steps are done; returns every change and the last action.
    async fn steps(&mut self, n: usize) -> (Vec<Change>, Action) {
        let mut changes = Vec::new();
        let mut action = Action::Continue;
        for _ in 0..n {
            let step = self.lp.step(self.state.take().unwrap()).await;
            changes.extend(step.changes);
            action = step.action;
            self.state = Some(step.next);
        }
        (changes, action)
    }

    fn stream_requests(&self) -> Vec<String> {
        self.api
            .state()
            .calls
            .iter()
            .filter(|(w, _)| w.starts_with("stream"))
            .map(|(w, _)| w.clone())
            .collect()
    }
}

fn ids(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upserted(i) => format!("+{}", i.id),
            Change::Removed(i) => format!("-{}", i.id),
            Change::Relisted { instances, .. } => format!(
                "={}",
                instances
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Change::JobChanged { job, .. } => format!("job {job}"),
            Change::Canaries(updates) => format!("canaries {}", updates.len()),
        })
        .collect()
}
