//! Nomad figures: event-stream frames the watcher decodes and turns into
//! changes per second (through the public `Watcher`, over an in-memory
//! stream), the time one huge frame (1, 8, 32 MiB) takes to pass, and
//! job-spec look-ups per second from a warm cache.
//!
//! `cargo bench -p haproxy-nomad-connector --bench nomad`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use haproxy_nomad_connector::nomad::{
    self, AllocStub, Api, Change, Checks, ChunkStream, Config, Indexed, NamespaceServices,
    Registration, Settings, Watcher,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Frames per run: half upserts, half deletions (typed `PlanResult`).
const FRAMES: usize = 10_000;

fn registration(n: usize) -> Value {
    json!({
        "ID": format!("_nomad-task-{n:08x}-1111-2222-3333-444444444444-group-web-web-http"),
        "ServiceName": "web", "Namespace": "default",
        "NodeID": "7406e90b-de16-d118-80fe-60d0f2730cb3", "Datacenter": "dc1",
        "JobID": "shop", "AllocID": format!("{n:08x}-1111-2222-3333-444444444444"),
        "Tags": ["haproxy.enable=true", "v1"], "Address": "10.0.0.5",
        "Port": 20000 + (n % 40000), "CreateIndex": n + 10, "ModifyIndex": n + 10,
    })
}

/// The wire: one NDJSON frame per Raft apply, in 64 KiB chunks.
fn wire() -> Vec<Bytes> {
    let mut text = String::from("{}\n");
    let half = FRAMES / 2;
    for n in 0..FRAMES {
        let (kind, reg) = if n < half {
            ("ServiceRegistration", registration(n))
        } else {
            ("PlanResult", registration(n - half))
        };
        let index = n + 10;
        let frame = json!({"Index": index, "Events": [{
            "Topic": "Service", "Type": kind, "Key": reg["ID"], "Namespace": "default",
            "FilterKeys": ["shop", "web"], "Index": index, "Payload": {"Service": reg}}]});
        text.push_str(&frame.to_string());
        text.push('\n');
    }
    text.into_bytes()
        .chunks(64 << 10)
        .map(Bytes::copy_from_slice)
        .collect()
}

/// A `Job` event padded to `size` bytes (a job with a huge `Meta`), then a
/// service registration, in 16 KiB chunks as a socket delivers them.
fn big_frame_wire(size: usize) -> Vec<Bytes> {
    let reg = registration(1);
    let job = json!({"Index": 10, "Events": [{"Topic": "Job", "Type": "JobRegistered",
        "Key": "big", "Namespace": "default", "Index": 10,
        "Payload": {"Job": {"ID": "big", "Namespace": "default", "Version": 0,
            "CreateIndex": 10, "Meta": {"blob": "x".repeat(size)}}}}]});
    let service = json!({"Index": 11, "Events": [{"Topic": "Service",
        "Type": "ServiceRegistration", "Key": reg["ID"], "Namespace": "default",
        "Index": 11, "Payload": {"Service": reg}}]});
    format!("{{}}\n{job}\n{service}\n")
        .into_bytes()
        .chunks(16 << 10)
        .map(Bytes::copy_from_slice)
        .collect()
}

#[derive(Clone)]
struct MemoryNomad {
    chunks: Vec<Bytes>,
}

struct MemoryStream(std::vec::IntoIter<Bytes>);

impl ChunkStream for MemoryStream {
    async fn chunk(&mut self) -> nomad::Result<Option<Bytes>> {
        match self.0.next() {
            Some(c) => Ok(Some(c)),
            None => std::future::pending().await,
        }
    }
}

impl Api for MemoryNomad {
    type Stream = MemoryStream;
    async fn services(&self, _: &str) -> nomad::Result<Indexed<Vec<NamespaceServices>>> {
        Ok(Indexed {
            index: 9,
            value: Vec::new(),
            next_token: None,
        })
    }
    async fn service(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> nomad::Result<Indexed<Vec<Registration>>> {
        unreachable!("nothing listed")
    }
    async fn job(&self, _: &str, _: &str) -> nomad::Result<Value> {
        Ok(
            json!({"ID": "shop", "Version": 0, "CreateIndex": 1, "TaskGroups": [{"Name": "web",
            "Services": [{"Name": "web", "PortLabel": "http", "Provider": "nomad",
                "Checks": [{"Type": "http", "Path": "/health", "Interval": 10_000_000_000_i64,
                            "Timeout": 2_000_000_000_i64}]}]}]}),
        )
    }
    async fn job_versions(&self, _: &str, _: &str) -> nomad::Result<Vec<Value>> {
        Ok(vec![self.job("", "").await?])
    }
    async fn job_allocations(&self, _: &str, _: &str) -> nomad::Result<Vec<AllocStub>> {
        Ok((0..1000)
            .map(|n| AllocStub {
                id: format!("{n:08x}-1111-2222-3333-444444444444"),
                job_version: 0,
                task_group: "web".into(),
                ..AllocStub::default()
            })
            .collect())
    }
    async fn allocation(&self, _: &str, _: &str) -> nomad::Result<AllocStub> {
        // A lone miss reads its allocation; the list answers the rest.
        Err(nomad::Error::Status {
            what: "GET /v1/allocation".into(),
            status: 404,
            body: "alloc not found".into(),
        })
    }
    async fn alloc_checks(&self, _: &str, _: &str) -> nomad::Result<Vec<nomad::CheckResult>> {
        Ok(Vec::new())
    }
    async fn event_stream(&self, _: &str, _: &[&str], _: u64) -> nomad::Result<MemoryStream> {
        Ok(MemoryStream(self.chunks.clone().into_iter()))
    }
}

fn settings() -> Settings {
    Config::default()
        .resolve(&BTreeMap::new())
        .expect("settings")
}

fn decode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let api = MemoryNomad { chunks: wire() };
    let mut g = c.benchmark_group("nomad");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.sample_size(20);
    g.bench_function("event_frames_to_changes", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                    let watcher = Watcher::new(api.clone(), &settings());
                    let start = Instant::now();
                    let task = tokio::spawn(watcher.run(tx, std::future::pending()));
                    let mut changes = 0;
                    while changes < FRAMES {
                        match rx.recv().await {
                            Some(Change::Upserted(_) | Change::Removed(_)) => changes += 1,
                            Some(_) => {}
                            None => panic!("watcher stopped"),
                        }
                    }
                    total += start.elapsed();
                    task.abort();
                }
                total
            })
        });
    });
    g.finish();

    // Linear decoding: each byte is searched once, so 32 MiB takes tens of
    // times what 1 MiB takes; a decoder that searched the unfinished line
    // again on every chunk (quadratic) would take about a thousand times.
    // The time per MiB still rises with the frame (1.2 to 2.6 ms measured).
    let mut g = c.benchmark_group("nomad_big_frame");
    g.sample_size(10);
    for mib in [1_usize, 8, 32] {
        let api = MemoryNomad {
            chunks: big_frame_wire(mib << 20),
        };
        g.throughput(Throughput::Bytes((mib << 20) as u64));
        g.bench_function(format!("{mib}_mib_then_a_service"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                        let watcher = Watcher::new(api.clone(), &settings());
                        let start = Instant::now();
                        let task = tokio::spawn(watcher.run(tx, std::future::pending()));
                        loop {
                            match rx.recv().await {
                                Some(Change::Upserted(_)) => break,
                                Some(_) => {}
                                None => panic!("watcher stopped"),
                            }
                        }
                        total += start.elapsed();
                        task.abort();
                    }
                    total
                })
            });
        });
    }
    g.finish();

    let checks = Checks::new(api.clone(), &settings());
    let instance = |n: usize| {
        let reg: Registration = serde_json::from_value(registration(n)).expect("registration");
        nomad::Instance::try_from(reg).expect("instance")
    };
    let instances: Vec<_> = (0..1000).map(instance).collect();
    rt.block_on(checks.check_for(&instances[0]));
    let mut g = c.benchmark_group("nomad");
    g.throughput(Throughput::Elements(instances.len() as u64));
    g.bench_function("warm_check_lookups", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in &instances {
                    std::hint::black_box(checks.check_for(i).await);
                }
            })
        });
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
