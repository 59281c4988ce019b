//! The fault set and its control: the same operations as `POST /_sim/fault`, as library calls.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::SimError;
use crate::poison::PoisonFault;
use crate::pool::Pool;

/// The faults in force. All off by default; they combine freely.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Connections held by deadlocked queries, never returned until released (the incident).
    pub deadlock: u32,
    /// Extra latency added to every Val request, while it holds its DB connection.
    #[serde(serialize_with = "ser_opt_duration")]
    pub slow: Option<Duration>,
    /// Probability (0..=1) that a Val request fails fast with 500, without touching the pool.
    pub error_rate: f64,
    /// Val requests are accepted and never answered (until the fault is cleared).
    pub hang: bool,
    /// Val requests get their TCP connection reset, with no response.
    pub reset: bool,
    /// Val responses send their headers, then never send the body.
    pub stall_body: bool,
    /// `/healthz` says `pass` whatever the pool says (its figures stay true).
    pub health_lies: bool,
    /// `/healthz` never answers (until the fault is cleared).
    pub health_hangs: bool,
    /// `/healthz` answers a shallow `{"status":"pass"}` with no `db_pool` at all: the
    /// incident's check. In-band `endpoint-load-metrics` stay true.
    pub health_shallow: bool,
    /// Requests for one Val deadlock the pool once enough of them are in flight at once.
    pub poison: Option<PoisonFault>,
}

/// A partial fault set, merged into the current one: absent fields are left as they are.
/// The JSON body of `POST /_sim/fault`; durations are strings like `"200ms"`, `null` clears.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    /// See [`Faults::deadlock`].
    pub deadlock: Option<u32>,
    /// See [`Faults::slow`]; `Some(None)` clears.
    #[serde(default, deserialize_with = "de_patch_duration")]
    pub slow: Option<Option<Duration>>,
    /// See [`Faults::error_rate`].
    pub error_rate: Option<f64>,
    /// See [`Faults::hang`].
    pub hang: Option<bool>,
    /// See [`Faults::reset`].
    pub reset: Option<bool>,
    /// See [`Faults::stall_body`].
    pub stall_body: Option<bool>,
    /// See [`Faults::health_lies`].
    pub health_lies: Option<bool>,
    /// See [`Faults::health_hangs`].
    pub health_hangs: Option<bool>,
    /// See [`Faults::health_shallow`].
    pub health_shallow: Option<bool>,
    /// See [`Faults::poison`]; `Some(None)` (JSON `null`) disarms it.
    #[serde(default, deserialize_with = "de_patch_nullable")]
    pub poison: Option<Option<PoisonFault>>,
}

impl FaultPatch {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`SimError::Fault`] when `error_rate` is not within 0..=1, or `poison` names an empty
    /// Val or a `concurrency` below 1.
    pub fn validate(&self) -> Result<(), SimError> {
        if let Some(p) = self.error_rate {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimError::Fault {
                    field: "error_rate",
                    reason: format!("{p} is not within 0..=1"),
                });
            }
        }
        if let Some(Some(poison)) = &self.poison {
            if poison.val.is_empty() {
                return Err(SimError::Fault {
                    field: "poison.val",
                    reason: "the Val key is empty".to_owned(),
                });
            }
            if poison.concurrency == 0 {
                return Err(SimError::Fault {
                    field: "poison.concurrency",
                    reason: format!("{} is not at least 1", poison.concurrency),
                });
            }
        }
        Ok(())
    }
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        None => s.serialize_none(),
    }
}

/// A field where `null` means "clear": absent is `None` (through `#[serde(default)]`).
fn de_patch_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn de_patch_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Duration>>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    match text {
        None => Ok(Some(None)),
        Some(t) => {
            let dur = humantime::parse_duration(&t).map_err(serde::de::Error::custom)?;
            Ok(Some((!dur.is_zero()).then_some(dur)))
        }
    }
}

/// Changes a running host's faults. Every change takes effect for the next request (and
/// wakes requests hung by `hang` or `health_hangs` when those are turned off).
#[derive(Debug)]
pub struct FaultControl {
    pool: Arc<Pool>,
    // The flags (all but `deadlock` and `poison`, which live in the pool), watched by hung
    // requests.
    flags: watch::Sender<Faults>,
}

impl FaultControl {
    pub(crate) fn new(pool: Arc<Pool>) -> FaultControl {
        FaultControl {
            pool,
            flags: watch::Sender::new(Faults::default()),
        }
    }

    /// The current fault set (`deadlock` and `poison` read from the pool itself).
    pub fn get(&self) -> Faults {
        let mut f = self.flags.borrow().clone();
        f.deadlock = self.pool.figures().deadlocked;
        f.poison = self.pool.poison();
        f
    }

    /// Merges a patch and returns the resulting set.
    ///
    /// # Errors
    /// [`SimError::Fault`] when the patch is out of range; nothing changes then.
    pub fn apply(&self, patch: &FaultPatch) -> Result<Faults, SimError> {
        patch.validate()?;
        if let Some(k) = patch.deadlock {
            self.deadlock(k);
        }
        if let Some(poison) = &patch.poison {
            self.pool.set_poison(poison.clone());
        }
        self.flags.send_modify(|f| {
            let set = |dst: &mut bool, v: Option<bool>| {
                if let Some(v) = v {
                    *dst = v;
                }
            };
            if let Some(slow) = patch.slow {
                f.slow = slow;
            }
            if let Some(p) = patch.error_rate {
                f.error_rate = p;
            }
            set(&mut f.hang, patch.hang);
            set(&mut f.reset, patch.reset);
            set(&mut f.stall_body, patch.stall_body);
            set(&mut f.health_lies, patch.health_lies);
            set(&mut f.health_hangs, patch.health_hangs);
            set(&mut f.health_shallow, patch.health_shallow);
        });
        Ok(self.get())
    }

    /// Turns every fault off and releases deadlocked and poisoned connections.
    pub fn clear(&self) {
        // Disarmed first, so the release cannot be followed by a fresh trigger.
        self.pool.set_poison(None);
        self.release();
        self.flags.send_replace(Faults::default());
    }

    /// Makes exactly `k` connections deadlocked (clamped to the pool size). Free ones are
    /// taken now; the rest are taken, in queue order, as requests return theirs. `0` is
    /// [`release`](Self::release): it frees the `poison` fault's connections too.
    pub fn deadlock(&self, k: u32) {
        if k == 0 {
            self.release();
        } else {
            self.pool.set_deadlocked(k, Instant::now());
        }
    }

    /// Releases every deadlocked connection, the `deadlock` fault's and the `poison` fault's;
    /// waiters are served and hung poisoned requests answer `500`. The `poison` trigger
    /// re-arms if the fault is still set. Returns how many connections were freed.
    pub fn release(&self) -> u32 {
        let now = Instant::now();
        let before = self.pool.figures_at(now).deadlocked;
        self.pool.set_deadlocked(0, now);
        before + self.pool.release_poisoned(now)
    }

    /// Poisons Val `val` (`None` disarms the fault): once `concurrency` of its requests are
    /// in flight at once (`0` counts as 1), they and every later one deadlock their
    /// connections. Disarming, or poisoning another Val, leaves connections already
    /// poisoned held: [`release`](Self::release) gives them back.
    pub fn poison(&self, val: Option<&str>, concurrency: u32) {
        self.pool.set_poison(val.map(|val| PoisonFault {
            val: val.to_owned(),
            concurrency: concurrency.max(1),
        }));
    }

    /// Adds latency to every Val request (`None` removes it).
    pub fn slow(&self, extra: Option<Duration>) {
        self.flags.send_modify(|f| f.slow = extra);
    }

    /// Fails this share of Val requests with 500 (clamped to 0..=1; NaN counts as 0).
    pub fn error_rate(&self, p: f64) {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.flags.send_modify(|f| f.error_rate = p);
    }

    /// Hangs Val requests (turning it off lets hung requests proceed).
    pub fn hang(&self, on: bool) {
        self.flags.send_modify(|f| f.hang = on);
    }

    /// Resets the connection of every Val request.
    pub fn reset(&self, on: bool) {
        self.flags.send_modify(|f| f.reset = on);
    }

    /// Stalls Val response bodies after the headers.
    pub fn stall_body(&self, on: bool) {
        self.flags.send_modify(|f| f.stall_body = on);
    }

    /// Makes `/healthz` report `pass` whatever the pool says.
    pub fn health_lies(&self, on: bool) {
        self.flags.send_modify(|f| f.health_lies = on);
    }

    /// Makes `/healthz` hang.
    pub fn health_hangs(&self, on: bool) {
        self.flags.send_modify(|f| f.health_hangs = on);
    }

    /// Makes `/healthz` shallow: `{"status":"pass"}` with no pool figures.
    pub fn health_shallow(&self, on: bool) {
        self.flags.send_modify(|f| f.health_shallow = on);
    }

    /// The flags now, without reading the pool (the request path).
    pub(crate) fn flags(&self) -> Faults {
        self.flags.borrow().clone()
    }

    /// Waits until `cond` is false on the flags (a hang being cleared).
    pub(crate) async fn wait_until_not(&self, cond: impl Fn(&Faults) -> bool) {
        let mut rx = self.flags.subscribe();
        // The sender lives as long as `self`, so this only ends when the flag clears.
        let _ = rx.wait_for(|f| !cond(f)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_merge_and_parse() {
        let control = FaultControl::new(Pool::new(4));
        let patch: FaultPatch =
            serde_json::from_str(r#"{"slow":"200ms","error_rate":0.5,"deadlock":2}"#).unwrap();
        let f = control.apply(&patch).unwrap();
        assert_eq!(f.slow, Some(Duration::from_millis(200)));
        assert_eq!((f.error_rate, f.deadlock), (0.5, 2));
        // A second patch keeps what it does not name.
        let f = control
            .apply(&serde_json::from_str(r#"{"hang":true}"#).unwrap())
            .unwrap();
        assert!(f.hang);
        assert_eq!(f.slow, Some(Duration::from_millis(200)));
        let f = control
            .apply(&serde_json::from_str(r#"{"slow":null}"#).unwrap())
            .unwrap();
        assert_eq!(f.slow, None);
        assert!(serde_json::from_str::<FaultPatch>(r#"{"hnag":true}"#).is_err());
        let bad: FaultPatch = serde_json::from_str(r#"{"error_rate":1.5}"#).unwrap();
        assert!(control.apply(&bad).is_err());
        control.clear();
        assert_eq!(control.get(), Faults::default());
    }

    #[test]
    fn poison_patches_are_tri_state_and_validated() {
        let control = FaultControl::new(Pool::new(4));
        let f = control
            .apply(&serde_json::from_str(r#"{"poison":{"val":"alice"}}"#).unwrap())
            .unwrap();
        assert_eq!(f.poison, Some(PoisonFault::new("alice")));
        assert_eq!(f.poison.as_ref().unwrap().concurrency, 2);
        // Absent: unchanged.
        let f = control
            .apply(&serde_json::from_str(r#"{"hang":false}"#).unwrap())
            .unwrap();
        assert_eq!(f.poison, Some(PoisonFault::new("alice")));
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(
            v["poison"],
            serde_json::json!({"val": "alice", "concurrency": 2})
        );
        // Null: disarmed.
        let f = control
            .apply(&serde_json::from_str(r#"{"poison":null}"#).unwrap())
            .unwrap();
        assert_eq!(f.poison, None);

        let zero: FaultPatch =
            serde_json::from_str(r#"{"poison":{"val":"a","concurrency":0}}"#).unwrap();
        let err = control.apply(&zero).unwrap_err();
        assert!(
            matches!(
                err,
                SimError::Fault {
                    field: "poison.concurrency",
                    ..
                }
            ),
            "{err}"
        );
        let empty: FaultPatch = serde_json::from_str(r#"{"poison":{"val":""}}"#).unwrap();
        assert!(control.apply(&empty).is_err());
        assert_eq!(
            control.get().poison,
            None,
            "a refused patch changes nothing"
        );
        assert!(serde_json::from_str::<FaultPatch>(r#"{"poison":{"val":"a","conc":2}}"#).is_err());
        assert!(serde_json::from_str::<FaultPatch>(r#"{"poison":{}}"#).is_err());

        control.poison(Some("bob"), 0);
        assert_eq!(
            control.get().poison,
            Some(PoisonFault {
                val: "bob".to_owned(),
                concurrency: 1
            })
        );
        control.clear();
        assert_eq!(control.get(), Faults::default());
    }

    #[test]
    fn serializes_durations_as_text() {
        let f = Faults {
            slow: Some(Duration::from_millis(250)),
            ..Faults::default()
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["slow"], "250ms");
        assert_eq!(v["deadlock"], 0);
        assert_eq!(v["poison"], serde_json::Value::Null);
    }
}
