//! Runs trials and emits events; it never prints. The terminal, `report.json`, JUnit and the
//! Markdown summary all consume the same events and records.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use contract::pubsub::Subscription;
use contract::{ConfigurationStore, ConfigurationUpdater, LockStore, OutputBinding, PubSub, SecretStore, StateStore};
use futures::{FutureExt, StreamExt};
use reports::{CaseRecord, Verdict};
use suites::bindings::BindingInbox;
use suites::faults::FaultControl;
use suites::invocation::Invoker;
use suites::pubsub::{NamespacedTopics, TopicSource};
use suites::{Ctx, Evidence, Finding};

use crate::plan::{Trial, driver_info};
use crate::spec::DriverKind;

/// What the runner reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run begins.
    Started {
        /// The trials planned, in order.
        trials: &'a [String],
    },
    /// A trial finished; `done` of `total` have.
    Finished {
        /// Trials finished so far, this one included.
        done: usize,
        /// Trials planned.
        total: usize,
        /// Its record.
        record: &'a CaseRecord,
    },
}

/// The drivers of a run: a store per component and driver.
#[derive(Default, Clone)]
pub struct Drivers {
    /// State stores by component name and driver.
    pub state: HashMap<(String, DriverKind), Arc<dyn StateStore>>,
    /// Lock stores by component name and driver.
    pub lock: HashMap<(String, DriverKind), Arc<dyn LockStore>>,
    /// Pub/sub components by name and driver.
    pub pubsub: HashMap<(String, DriverKind), Arc<dyn PubSub>>,
    /// Secret stores by name and driver.
    pub secrets: HashMap<(String, DriverKind), Arc<dyn SecretStore>>,
    /// Configuration stores by name and driver, with the updater that writes behind them.
    pub configuration: HashMap<(String, DriverKind), ConfigurationTarget>,
    /// Where pub/sub trials get their topics, when not named after the trial (over HTTP the
    /// topics are declared to the sidecar up front and leased).
    pub topics: HashMap<(String, DriverKind), Arc<dyn TopicSource>>,
    /// Bindings by name and driver.
    pub bindings: HashMap<(String, DriverKind), BindingTarget>,
    /// Service invocation through a sidecar, by target name.
    pub invokers: HashMap<(String, DriverKind), Arc<dyn Invoker>>,
    /// Fault control of each component under the faults driver.
    pub faults: HashMap<String, Arc<dyn FaultControl>>,
}

/// What one trial's body is given: whichever stores its component serves.
#[derive(Default, Clone)]
pub struct Reach {
    /// The state store, if the component is one.
    pub state: Option<Arc<dyn StateStore>>,
    /// The lock store, if the component is one.
    pub lock: Option<Arc<dyn LockStore>>,
    /// The pub/sub component, if the component is one.
    pub pubsub: Option<Arc<dyn PubSub>>,
    /// Where its topics come from.
    pub topics: Option<Arc<dyn TopicSource>>,
    /// The secret store, if the component is one.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// The configuration store, if the component is one.
    pub configuration: Option<ConfigurationTarget>,
    /// The binding, if the component is one.
    pub binding: Option<BindingTarget>,
    /// The invoker, if the target is service invocation.
    pub invoker: Option<Arc<dyn Invoker>>,
    /// Control over the network and backends, for the faults driver.
    pub faults: Option<Arc<dyn FaultControl>>,
}

/// A binding's two sides, as a driver reaches them.
#[derive(Clone, Default)]
pub struct BindingTarget {
    /// The output side.
    pub output: Option<Arc<dyn OutputBinding>>,
    /// Where the input side's events arrive.
    pub inbox: Option<Arc<BindingInbox>>,
    /// The in-process driver's reading of the input side; reading stops when the last clone goes.
    pub reading: Option<Arc<Subscription>>,
}

/// A configuration store and, when it has one, its updater.
#[derive(Clone)]
pub struct ConfigurationTarget {
    /// The store, through the driver.
    pub store: Arc<dyn ConfigurationStore>,
    /// Writes items behind the store's back.
    pub updater: Option<Arc<dyn ConfigurationUpdater>>,
}

impl Reach {
    fn is_empty(&self) -> bool {
        self.state.is_none()
            && self.lock.is_none()
            && self.pubsub.is_none()
            && self.secrets.is_none()
            && self.configuration.is_none()
            && self.binding.is_none()
            && self.invoker.is_none()
    }
}

impl Drivers {
    /// What a trial against `component` through `driver` can reach.
    pub fn reach(&self, component: &str, driver: DriverKind) -> Reach {
        let key = (component.to_owned(), driver);
        Reach {
            state: self.state.get(&key).cloned(),
            lock: self.lock.get(&key).cloned(),
            pubsub: self.pubsub.get(&key).cloned(),
            topics: self.topics.get(&key).cloned(),
            secrets: self.secrets.get(&key).cloned(),
            configuration: self.configuration.get(&key).cloned(),
            binding: self.bindings.get(&key).cloned(),
            invoker: self.invokers.get(&key).cloned(),
            faults: (driver == DriverKind::Faults).then(|| self.faults.get(component).cloned()).flatten(),
        }
    }
}

/// Runs `trials`, `concurrency` at a time, calling `on_begin` with each one's name right
/// before it runs and `on_event` as each finishes, and returns the records in plan order.
/// `run_id` makes every trial's keys unique; `rerun` gives the command that reruns one trial.
pub async fn execute(
    trials: Vec<Trial>,
    drivers: &Drivers,
    concurrency: usize,
    run_id: &str,
    rerun: &dyn Fn(&str) -> String,
    on_event: &mut dyn FnMut(Event<'_>),
    on_begin: &(dyn Fn(&str) + Sync),
) -> Vec<CaseRecord> {
    let total = trials.len();
    let names: Vec<String> = trials.iter().map(|t| t.name.clone()).collect();
    on_event(Event::Started { trials: &names });
    // Fault scenarios stop backends and cut networks: they run after everything else, alone.
    let (faults, others): (Vec<_>, Vec<_>) =
        trials.into_iter().enumerate().partition(|(_, t)| t.target.driver == DriverKind::Faults);
    let mut results: Vec<Option<CaseRecord>> = vec![None; total];
    let mut done = 0;
    for (phase, width) in [(others, concurrency.max(1)), (faults, 1)] {
        let runs = phase.into_iter().map(|(index, trial)| {
            let reach = drivers.reach(&trial.target.component, trial.target.driver);
            let namespace = format!("certify-{run_id}-{index}");
            async move {
                // Told before the body runs, so a crash is traced to the trials that were running.
                on_begin(&trial.name);
                (index, run_one(trial, reach, namespace).await)
            }
        });
        let mut stream = futures::stream::iter(runs).buffer_unordered(width);
        while let Some((index, mut record)) = stream.next().await {
            done += 1;
            if record.verdict != Verdict::Pass {
                record.rerun = Some(rerun(&record.trial));
            }
            on_event(Event::Finished { done, total, record: &record });
            results[index] = Some(record);
        }
    }
    results.into_iter().flatten().collect()
}

/// Runs one trial against its driver; `namespace` must be unique to the trial.
pub async fn run_one(trial: Trial, reach: Reach, namespace: String) -> CaseRecord {
    let started = Instant::now();
    let evidence = Evidence::default();
    let (verdict, reason) = if let Some(reason) = &trial.skip {
        (Verdict::Skipped, Some(reason.clone()))
    } else if let Some(crate::plan::Blocked::SetupFailed(reason)) = &trial.target.blocked {
        (Verdict::Fail, Some(reason.clone()))
    } else if reach.is_empty() {
        (Verdict::Skipped, Some(format!("no {} driver for this component", trial.target.driver.as_str())))
    } else {
        let topics = reach.topics.unwrap_or_else(|| Arc::new(NamespacedTopics));
        let run = async {
            // Leasing waits for a free topic set; that wait counts against the case's timeout.
            let topics = topics.lease(&namespace).await.map_err(Finding::Fail)?;
            let ctx = Ctx {
                state: reach.state.unwrap_or_else(|| Arc::new(suites::Absent)),
                lock: reach.lock.unwrap_or_else(|| Arc::new(suites::Absent)),
                pubsub: reach.pubsub.unwrap_or_else(|| Arc::new(suites::Absent)),
                secrets: reach.secrets.unwrap_or_else(|| Arc::new(suites::Absent)),
                configuration: reach
                    .configuration
                    .as_ref()
                    .map(|c| Arc::clone(&c.store))
                    .unwrap_or_else(|| Arc::new(suites::Absent)),
                config_updater: reach.configuration.as_ref().and_then(|c| c.updater.clone()),
                binding: reach.binding.as_ref().and_then(|b| b.output.clone()),
                binding_inbox: reach.binding.as_ref().and_then(|b| b.inbox.clone()),
                invoker: reach.invoker.clone(),
                faults: reach.faults.clone(),
                topics,
                driver: driver_info(trial.target.driver),
                claims: trial.target.claims.clone(),
                settings: trial.target.settings.clone(),
                component: trial.target.component.clone(),
                namespace,
                evidence: evidence.clone(),
            };
            (trial.case.body)(ctx).await
        };
        let body = AssertUnwindSafe(run).catch_unwind();
        match tokio::time::timeout(trial.case.timeout, body).await {
            Err(_) => (Verdict::Fail, Some(format!("timed out after {} s", trial.case.timeout.as_secs()))),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
                (Verdict::Fail, Some(format!("the case panicked: {}", message.unwrap_or_default())))
            }
            Ok(Ok(Ok(()))) => (Verdict::Pass, None),
            Ok(Ok(Err(Finding::Fail(r)))) => (Verdict::Fail, Some(r)),
            Ok(Ok(Err(Finding::Inconclusive(r)))) => (Verdict::Inconclusive, Some(r)),
            Ok(Ok(Err(Finding::Skip(r)))) => (Verdict::Skipped, Some(r)),
        }
    };
    CaseRecord {
        trial: trial.name,
        id: trial.case.id.to_owned(),
        component: trial.target.component,
        driver: trial.target.driver.as_str().to_owned(),
        verdict,
        reason,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        rule: trial.case.rule.to_owned(),
        source: trial.case.source.to_owned(),
        features: trial.case.claims().iter().map(|c| c.as_str().to_owned()).collect(),
        tags: trial.case.tags.iter().map(|t| (*t).to_owned()).collect(),
        rerun: None,
        evidence: evidence.take(),
    }
}
