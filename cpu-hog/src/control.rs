//! The feedback controller of one worker, pure: given the wall time since the worker
//! started and the CPU time it has consumed, decide whether to spin or sleep, and for
//! how long.
//!
//! The target is cumulative: after `elapsed` wall time the worker should have consumed
//! `share × elapsed` of CPU. The difference (`lead`, positive when ahead) drives a
//! two-state loop with hysteresis: spin until the lead reaches `lead_goal`, then sleep
//! until it is back to zero. Spinning grows the lead at `1 - share` per wall ns and
//! sleeping shrinks it at `share`, so one busy+idle cycle lasts
//! `lead_goal / (share × (1 - share))`; `lead_goal` is chosen to make that cycle
//! [`PERIOD`] (10 ms), short enough that 1-second samples are smooth.
//!
//! Because the target is cumulative, time lost to preemption or an oversleep is made up
//! later (as far as the scheduler allows). Debt is capped at [`DEBT_CAP`]: after a long
//! stall (SIGSTOP, a frozen cgroup, heavy contention) the excess is forgiven, so the
//! worker never runs a burst of 100% for longer than `DEBT_CAP / (1 - share)`.

use std::time::Duration;

/// Length of one busy+idle cycle at mid-range shares.
pub const PERIOD: Duration = Duration::from_millis(10);
/// Neither the busy nor the idle part of a cycle is shorter than this (at shares close
/// to 0 or 1 the cycle grows instead, up to [`MAX_PERIOD`]).
pub const MIN_SLICE: Duration = Duration::from_micros(100);
pub const MAX_PERIOD: Duration = Duration::from_millis(100);
/// Longest single sleep, so that the stop flag is seen promptly.
pub const MAX_SLEEP: Duration = Duration::from_millis(10);
/// Longest single spin chunk before the decision is taken again.
pub const MAX_SPIN: Duration = Duration::from_millis(2);
/// Shortest spin chunk (a smaller one costs more in clock reads than it burns).
pub const MIN_SPIN: Duration = Duration::from_micros(20);
/// Shorter sleeps are not worth a syscall; the worker spins instead.
pub const MIN_SLEEP: Duration = Duration::from_micros(10);
/// Most CPU time a worker may owe before the excess is forgiven.
pub const DEBT_CAP: Duration = Duration::from_millis(300);

/// What the worker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Burn CPU for this much wall time, then decide again.
    Spin(Duration),
    /// Sleep this long, then decide again.
    Sleep(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Busy,
    Idle,
}

/// The state of one worker's feedback loop.
#[derive(Debug, Clone)]
pub struct Controller {
    /// Fraction of one CPU to hold, in (0, 1].
    share: f64,
    /// Lead (ns of CPU ahead of target) at which spinning stops.
    lead_goal: f64,
    debt_cap: f64,
    /// CPU ns of debt forgiven so far (subtracted from the target).
    forgiven: f64,
    mode: Mode,
}

impl Controller {
    /// `share` is the fraction of one CPU (0.5 for 50%); values outside (0, 1] are
    /// clamped (cli.rs validates them first).
    pub fn new(share: f64) -> Controller {
        Controller::with_debt_cap(share, DEBT_CAP)
    }

    pub fn with_debt_cap(share: f64, debt_cap: Duration) -> Controller {
        let share = share.clamp(1e-6, 1.0);
        Controller {
            share,
            lead_goal: share * (1.0 - share) * cycle(share).as_nanos() as f64,
            debt_cap: debt_cap.as_nanos() as f64,
            forgiven: 0.0,
            mode: Mode::Busy,
        }
    }

    /// CPU ns forgiven so far because the debt went over the cap.
    pub fn forgiven(&self) -> Duration {
        Duration::from_nanos(self.forgiven as u64)
    }

    /// Decides the next action, `elapsed` wall ns after start with `consumed` CPU ns used.
    pub fn decide(&mut self, elapsed: Duration, consumed: Duration) -> Action {
        let target = self.share * elapsed.as_nanos() as f64 - self.forgiven;
        let mut lead = consumed.as_nanos() as f64 - target;
        if -lead > self.debt_cap {
            self.forgiven += -lead - self.debt_cap;
            lead = -self.debt_cap;
        }
        if self.share >= 1.0 {
            return Action::Spin(MAX_SPIN);
        }
        self.mode = match self.mode {
            Mode::Busy if lead >= self.lead_goal => Mode::Idle,
            Mode::Idle if lead <= 0.0 => Mode::Busy,
            mode => mode,
        };
        if self.mode == Mode::Idle {
            // Wall time until the target catches up with what was consumed.
            let sleep = nanos(lead / self.share);
            if sleep >= MIN_SLEEP {
                return Action::Sleep(sleep.min(MAX_SLEEP));
            }
            self.mode = Mode::Busy;
        }
        // Wall time of uninterrupted spinning that brings the lead to its goal.
        let spin = nanos((self.lead_goal - lead).max(0.0) / (1.0 - self.share));
        Action::Spin(spin.clamp(MIN_SPIN, MAX_SPIN))
    }
}

/// The busy+idle cycle for a share: [`PERIOD`], stretched so that neither part is
/// shorter than [`MIN_SLICE`], at most [`MAX_PERIOD`].
pub fn cycle(share: f64) -> Duration {
    let slice = MIN_SLICE.as_secs_f64();
    let busy_bound = slice / share.max(1e-6);
    let idle_bound = slice / (1.0 - share).max(1e-6);
    let secs = PERIOD.as_secs_f64().max(busy_bound).max(idle_bound);
    Duration::from_secs_f64(secs.min(MAX_PERIOD.as_secs_f64()))
}

fn nanos(ns: f64) -> Duration {
    Duration::from_nanos(ns.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated machine: spinning consumes CPU at `cpu_rate` of wall time (1.0 when
    /// alone, less under contention); sleeping oversleeps by `overshoot`.
    struct Sim {
        elapsed: Duration,
        consumed: Duration,
        cpu_rate: f64,
        overshoot: Duration,
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                elapsed: Duration::ZERO,
                consumed: Duration::ZERO,
                cpu_rate: 1.0,
                overshoot: Duration::ZERO,
            }
        }

        /// Runs the controller for `wall`; returns the largest spin and sleep seen.
        fn run(&mut self, c: &mut Controller, wall: Duration) -> (Duration, Duration) {
            let end = self.elapsed + wall;
            let (mut max_spin, mut max_sleep) = (Duration::ZERO, Duration::ZERO);
            while self.elapsed < end {
                match c.decide(self.elapsed, self.consumed) {
                    Action::Spin(d) => {
                        max_spin = max_spin.max(d);
                        self.elapsed += d;
                        self.consumed += d.mul_f64(self.cpu_rate);
                    }
                    Action::Sleep(d) => {
                        max_sleep = max_sleep.max(d);
                        self.elapsed += d + self.overshoot;
                    }
                }
            }
            (max_spin, max_sleep)
        }

        fn utilisation(&self) -> f64 {
            self.consumed.as_secs_f64() / self.elapsed.as_secs_f64()
        }
    }

    #[test]
    fn holds_the_share_on_an_idle_machine() {
        for percent in [1.0, 10.0, 12.5, 30.0, 50.0, 80.0, 99.0, 99.9, 100.0] {
            let mut c = Controller::new(percent / 100.0);
            let mut sim = Sim::new();
            let (max_spin, max_sleep) = sim.run(&mut c, Duration::from_secs(10));
            let achieved = sim.utilisation() * 100.0;
            assert!(
                (achieved - percent).abs() < 0.05,
                "{percent}%: achieved {achieved}"
            );
            assert!(max_spin <= MAX_SPIN, "{percent}%: spin {max_spin:?}");
            assert!(max_sleep <= MAX_SLEEP, "{percent}%: sleep {max_sleep:?}");
        }
    }

    #[test]
    fn oversleeping_is_made_up() {
        let mut c = Controller::new(0.3);
        let mut sim = Sim::new();
        sim.overshoot = Duration::from_micros(80);
        sim.run(&mut c, Duration::from_secs(10));
        assert!(
            (sim.utilisation() - 0.3).abs() < 0.0005,
            "{}",
            sim.utilisation()
        );
    }

    #[test]
    fn contention_is_made_up_while_the_fair_share_allows() {
        // Spinning only gets 2/3 of the wall time (three busy threads on two cores).
        let mut c = Controller::new(0.5);
        let mut sim = Sim::new();
        sim.cpu_rate = 2.0 / 3.0;
        sim.run(&mut c, Duration::from_secs(10));
        assert!(
            (sim.utilisation() - 0.5).abs() < 0.001,
            "{}",
            sim.utilisation()
        );
        assert_eq!(c.forgiven(), Duration::ZERO);
    }

    #[test]
    fn a_long_stall_is_forgiven_beyond_the_debt_cap() {
        let mut c = Controller::new(0.5);
        let mut sim = Sim::new();
        sim.run(&mut c, Duration::from_secs(1));
        // SIGSTOP for 5 s: wall time passes, no CPU is consumed.
        sim.elapsed += Duration::from_secs(5);
        let before = sim.consumed;
        let (max_spin, _) = sim.run(&mut c, Duration::from_secs(1));
        // Catching up takes at most DEBT_CAP / (1 - share) = 600 ms of spinning, so the
        // second after the stall consumes at most 0.6 s + the remaining 0.4 s at 50%.
        let burst = (sim.consumed - before).as_secs_f64();
        assert!(burst < 0.85, "burst {burst}");
        assert!(max_spin <= MAX_SPIN);
        let forgiven = c.forgiven().as_secs_f64();
        assert!(
            (forgiven - (2.5 - DEBT_CAP.as_secs_f64())).abs() < 0.01,
            "{forgiven}"
        );
    }

    #[test]
    fn starts_by_spinning_and_alternates_with_sleeping() {
        let mut c = Controller::new(0.5);
        assert!(matches!(
            c.decide(Duration::ZERO, Duration::ZERO),
            Action::Spin(_)
        ));
        // The lead goal for 50% at a 10 ms cycle is 2.5 ms: spin until it is reached.
        let action = c.decide(Duration::from_millis(5), Duration::from_micros(4000));
        assert!(matches!(action, Action::Spin(_)), "{action:?}");
        // 3.5 ms ahead: sleep until the target (growing at 0.5 per ns) catches up.
        let action = c.decide(Duration::from_millis(5), Duration::from_millis(6));
        assert_eq!(action, Action::Sleep(Duration::from_millis(7)));
    }

    #[test]
    fn cycle_stretches_near_the_extremes() {
        assert_eq!(cycle(0.5), PERIOD);
        assert_eq!(cycle(0.001), MAX_PERIOD);
        assert_eq!(cycle(0.999), MAX_PERIOD);
        let c = cycle(0.995);
        assert!(c > PERIOD && c < MAX_PERIOD, "{c:?}");
    }

    #[test]
    fn full_share_always_spins() {
        let mut c = Controller::new(1.0);
        for ms in [0, 5, 100] {
            let action = c.decide(Duration::from_millis(ms), Duration::from_millis(ms));
            assert_eq!(action, Action::Spin(MAX_SPIN));
        }
    }
}
