//! Scenario files for the binary: jobs to register and allocations to place.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::Sim;
use crate::lifecycle::{PlaceAlloc, SimError};

/// A scenario: `{"jobs": [<job JSON>...], "allocs": [<PlaceAlloc>...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Scenario {
    /// Jobs, as `GET /v1/job/:id` returns them, registered in order.
    pub jobs: Vec<Value>,
    /// Placements, in order (snake_case fields of [`PlaceAlloc`]).
    pub allocs: Vec<PlaceAlloc>,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))
    }

    /// Registers the jobs and places the allocations; returns the alloc IDs.
    pub fn apply(&self, sim: &Sim) -> Result<Vec<String>, SimError> {
        for job in &self.jobs {
            sim.try_register_job(job.clone())?;
        }
        self.allocs
            .iter()
            .map(|a| sim.try_place_alloc(a.clone()))
            .collect()
    }
}
