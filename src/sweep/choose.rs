//! Pure: which units a sweep removes, by which criterion, and which it keeps. A unit goes whole or not at all;
//! whatever depends on a removed unit goes with it (else the next build would rebuild what was kept), and whatever a
//! kept unit needs stays (else it would be rebuilt). A unit is *used* when it, or anything that depends on it, was
//! last built or read.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::layout::unit::{Unit, UnitKind};
pub use crate::model::Criteria;
use crate::model::{Criterion, Kept, KeptReason, SweepPlan, Tally};

/// What is known besides the units.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Units a live process holds: the pid and the file.
    pub held: HashMap<usize, (u32, PathBuf)>,
    /// Profiles skipped because a build held a lock: the holder's pid (if seen) and the lock file.
    pub locked: HashMap<PathBuf, (Option<u32>, PathBuf)>,
    pub current: Option<String>,
    pub installed: Option<HashSet<String>>,
    /// The version each rustc hash stands for, from the metadata of a unit built with it.
    pub versions: HashMap<u64, String>,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// Bytes in the target and build dirs together.
    pub total_bytes: u64,
}

/// The decision: the units to remove (by index), each with its criterion, and the plan as reports show it.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub remove: Vec<(usize, Criterion)>,
    pub plan: SweepPlan,
}

/// Why a unit stays: the reason, and the process and file behind it.
type Why = (KeptReason, Option<u32>, Option<PathBuf>);

/// The version of the rustc that built `u`.
fn version_of<'a>(u: &'a Unit, facts: &'a Facts) -> Option<&'a str> {
    u.version.as_deref().or_else(|| u.rustc.and_then(|r| facts.versions.get(&r)).map(String::as_str))
}

/// Chooses what to remove from `units`.
#[must_use]
pub fn choose(units: &[Unit], facts: &Facts, criteria: Criteria) -> Choice {
    let by_fp: HashMap<u64, usize> = units.iter().enumerate().filter_map(|(i, u)| Some((u.fingerprint?, i))).collect();
    let deps_of: Vec<Vec<usize>> =
        units.iter().map(|u| u.deps.iter().filter_map(|d| by_fp.get(d).copied()).collect()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for (u, deps) in deps_of.iter().enumerate() {
        for &d in deps {
            dependents[d].push(u);
        }
    }
    let used = used_through_dependents(units, &dependents);

    let kept = kept_with_needs(units, facts, &deps_of);

    let cutoff = criteria.older_than.map(|d| facts.now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    let picked = |i: usize, u: &Unit| -> Option<Criterion> {
        if matches!(u.kind, UnitKind::Orphan(_)) {
            return Some(Criterion::Orphan);
        }
        let version = version_of(u, facts);
        if let (Some(v), Some(installed)) = (version, &facts.installed)
            && !installed.contains(v)
        {
            return Some(Criterion::UninstalledToolchain);
        }
        if criteria.other_toolchains
            && let (Some(v), Some(current)) = (version, &facts.current)
            && v != current
        {
            return Some(Criterion::OtherToolchain);
        }
        if cutoff.is_some_and(|c| used[i] < c) {
            return Some(Criterion::OlderThan);
        }
        None
    };

    let mut remove: HashMap<usize, Criterion> = HashMap::new();
    let mut kept_out: Vec<Kept> = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let Some(c) = picked(i, u) else { continue };
        if let Some((reason, pid, path)) = kept.get(&i) {
            kept_out.push(Kept {
                unit: Some(u.name.clone()),
                profile: u.profile.clone(),
                reason: *reason,
                pid: *pid,
                path: path.clone(),
            });
            continue;
        }
        take_with_dependents(i, c, &dependents, &kept, &mut remove);
    }

    if let Some(max) = criteria.max_size {
        over_budget(units, facts.total_bytes, max, &used, (&dependents, &kept), &mut remove);
    }

    for profile in facts.locked.keys() {
        let (pid, lock) = &facts.locked[profile];
        kept_out.push(Kept {
            unit: None,
            profile: profile.clone(),
            reason: KeptReason::Locked,
            pid: *pid,
            path: Some(lock.clone()),
        });
    }
    kept_out.sort_by(|a, b| (&a.profile, &a.unit).cmp(&(&b.profile, &b.unit)));

    let mut remove: Vec<(usize, Criterion)> = remove.into_iter().collect();
    remove.sort_unstable();
    let by_criterion = criteria
        .in_effect()
        .into_iter()
        .map(|c| {
            let mut tally = Tally::default();
            let mut names = Vec::new();
            for &(i, _) in remove.iter().filter(|(_, rc)| *rc == c) {
                tally.add(units[i].files, units[i].bytes);
                names.push(units[i].name.clone());
            }
            names.sort();
            (c, tally, names)
        })
        .collect();
    Choice { remove, plan: SweepPlan { by_criterion, kept: kept_out } }
}

/// What stays whatever the criteria say: held units, units of skipped profiles, and everything they need.
fn kept_with_needs(units: &[Unit], facts: &Facts, deps_of: &[Vec<usize>]) -> HashMap<usize, Why> {
    let mut kept: HashMap<usize, Why> = HashMap::new();
    let mut seeds: Vec<(usize, Why)> = Vec::new();
    for (&i, (pid, path)) in &facts.held {
        seeds.push((i, (KeptReason::Held, Some(*pid), Some(path.clone()))));
    }
    for (i, u) in units.iter().enumerate() {
        if let Some((pid, lock)) = facts.locked.get(&u.profile) {
            seeds.push((i, (KeptReason::Locked, *pid, Some(lock.clone()))));
        }
    }
    // What is held itself is named by its own holder; what it needs, by the first that needs it.
    for (seed, why) in &seeds {
        kept.entry(*seed).or_insert_with(|| why.clone());
    }
    for (seed, why) in seeds {
        let mut stack: Vec<usize> = deps_of[seed].clone();
        while let Some(i) = stack.pop() {
            if kept.contains_key(&i) {
                continue;
            }
            kept.insert(i, why.clone());
            stack.extend(deps_of[i].iter().copied());
        }
    }
    kept
}

/// `--max-size`: the least recently used units that may go, each with what depends on it, until what is left of
/// `total` bytes fits in `max`.
fn over_budget(
    units: &[Unit],
    total: u64,
    max: u64,
    used: &[i64],
    (dependents, kept): (&[Vec<usize>], &HashMap<usize, Why>),
    remove: &mut HashMap<usize, Criterion>,
) {
    let mut left = total.saturating_sub(remove.keys().map(|&i| units[i].bytes).sum());
    let mut order: Vec<usize> = (0..units.len()).filter(|i| !remove.contains_key(i) && !kept.contains_key(i)).collect();
    order.sort_by(|&a, &b| used[a].cmp(&used[b]).then_with(|| units[a].name.cmp(&units[b].name)));
    for i in order {
        if left <= max {
            break;
        }
        if remove.contains_key(&i) {
            continue;
        }
        let before: HashSet<usize> = remove.keys().copied().collect();
        take_with_dependents(i, Criterion::MaxSize, dependents, kept, remove);
        let freed: u64 = remove.keys().filter(|k| !before.contains(k)).map(|&k| units[k].bytes).sum();
        left = left.saturating_sub(freed);
    }
}

/// Marks `i` for removal by `c`, and every unit that depends on it (by `c`, unless one of its own picked it).
fn take_with_dependents(
    i: usize,
    c: Criterion,
    dependents: &[Vec<usize>],
    kept: &HashMap<usize, Why>,
    remove: &mut HashMap<usize, Criterion>,
) {
    let mut stack = vec![i];
    while let Some(u) = stack.pop() {
        // A kept unit never depends on a removed one: what a kept unit needs is kept.
        if kept.contains_key(&u) || remove.get(&u).is_some_and(|&had| had <= c) {
            continue;
        }
        remove.insert(u, c);
        stack.extend(dependents[u].iter().copied());
    }
}

/// Each unit's last use: its own, or the latest of anything that depends on it (building or running that reads it).
fn used_through_dependents(units: &[Unit], dependents: &[Vec<usize>]) -> Vec<i64> {
    let mut used: Vec<i64> = units.iter().map(|u| u.used).collect();
    // Relaxed until nothing changes; a chain is at most as long as there are units.
    for _ in 0..units.len() {
        let mut changed = false;
        for (u, ds) in dependents.iter().enumerate() {
            let latest = ds.iter().map(|&d| used[d]).max().unwrap_or(i64::MIN);
            if latest > used[u] {
                used[u] = latest;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // An incremental dir is rustc's cache for its crate's units: used when they are (a build that finds them fresh
    // reads no session).
    let mut by_crate: HashMap<(&std::path::Path, &str), i64> = HashMap::new();
    for (j, u) in units.iter().enumerate().filter(|(_, u)| u.kind == UnitKind::Built) {
        if let Some(k) = &u.krate {
            let e = by_crate.entry((u.profile.as_path(), k.as_str())).or_insert(i64::MIN);
            *e = (*e).max(used[j]);
        }
    }
    for (i, u) in units.iter().enumerate().filter(|(_, u)| u.kind == UnitKind::Incremental) {
        if let Some(&t) = u.krate.as_deref().and_then(|k| by_crate.get(&(u.profile.as_path(), k))) {
            used[i] = used[i].max(t);
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::unit::{Area, Entry};
    use std::time::Duration;

    fn unit(name: &str, fp: u64, deps: &[u64], version: &str, used: i64, bytes: u64) -> Unit {
        Unit {
            name: name.into(),
            profile: "debug".into(),
            kind: UnitKind::Built,
            krate: None,
            entries: vec![Entry { area: Area::Build, path: name.into() }],
            fingerprint: Some(fp),
            deps: deps.to_vec(),
            rustc: None,
            version: Some(version.into()),
            metadata: None,
            files: 1,
            bytes,
            used,
            built: Some(used),
        }
    }

    fn facts(current: &str, installed: &[&str]) -> Facts {
        Facts {
            current: Some(current.into()),
            installed: Some(installed.iter().map(|s| (*s).to_string()).collect()),
            now: 1_000_000,
            ..Facts::default()
        }
    }

    fn removed(units: &[Unit], c: &Choice) -> Vec<(String, Criterion)> {
        let mut v: Vec<_> = c.remove.iter().map(|&(i, c)| (units[i].name.clone(), c)).collect();
        v.sort();
        v
    }

    #[test]
    fn toolchains_installed_current_and_others() {
        let units = [
            unit("a-old", 1, &[], "rustc 1.90", 0, 10),
            unit("a-cur", 2, &[], "rustc 1.95", 0, 10),
            unit("a-other", 3, &[], "rustc 1.96", 0, 10),
        ];
        let f = facts("rustc 1.95", &["rustc 1.95", "rustc 1.96"]);
        let alone = choose(&units, &f, Criteria::default());
        assert_eq!(removed(&units, &alone), [("a-old".into(), Criterion::UninstalledToolchain)]);
        let others = choose(&units, &f, Criteria { other_toolchains: true, ..Criteria::default() });
        assert_eq!(
            removed(&units, &others),
            [("a-old".into(), Criterion::UninstalledToolchain), ("a-other".into(), Criterion::OtherToolchain)]
        );
        let unknown = Facts { installed: None, current: None, ..f };
        assert!(choose(&units, &unknown, Criteria { other_toolchains: true, ..Criteria::default() }).remove.is_empty());
    }

    #[test]
    fn dependents_go_with_what_they_need_and_held_units_keep_their_needs() {
        // app -> dep -> base; all old.
        let units = [
            unit("base", 1, &[], "v", 100, 10),
            unit("dep", 2, &[1], "v", 100, 10),
            unit("app", 3, &[2], "v", 100, 10),
            unit("other", 4, &[], "v", 100, 10),
        ];
        let mut f = facts("v", &["v"]);
        let old = Criteria { older_than: Some(Duration::from_secs(10)), ..Criteria::default() };
        assert_eq!(choose(&units, &f, old).remove.len(), 4);
        // The app is held: it and everything it needs stay; `other` goes.
        f.held.insert(2, (77, "/t/debug/deps/app-x".into()));
        let c = choose(&units, &f, old);
        assert_eq!(removed(&units, &c), [("other".into(), Criterion::OlderThan)]);
        assert_eq!(c.plan.kept.len(), 3, "{:?}", c.plan.kept);
        assert!(c.plan.kept.iter().all(|k| k.reason == KeptReason::Held && k.pid == Some(77)));
    }

    #[test]
    fn use_flows_from_dependents_and_an_orphan_needs_no_criterion() {
        let mut units = vec![
            unit("base", 1, &[], "v", 100, 10),
            unit("app", 2, &[1], "v", 999_990, 10),
            unit("x", 3, &[], "v", 5, 1),
        ];
        units[2].kind = UnitKind::Orphan("rcgu");
        let f = facts("v", &["v"]);
        let c = choose(&units, &f, Criteria { older_than: Some(Duration::from_secs(100)), ..Criteria::default() });
        assert_eq!(removed(&units, &c), [("x".into(), Criterion::Orphan)], "base is used through app");
    }

    #[test]
    fn an_incremental_dir_is_used_when_its_crates_units_are() {
        let mut units =
            vec![unit("app", 1, &[], "v", 999_990, 10), unit("debug/incremental/app-1x", 0, &[], "v", 5, 10)];
        units[0].krate = Some("app".into());
        units[1].kind = UnitKind::Incremental;
        units[1].fingerprint = None;
        units[1].krate = Some("app".into());
        let f = facts("v", &["v"]);
        let c = choose(&units, &f, Criteria { older_than: Some(Duration::from_secs(100)), ..Criteria::default() });
        assert!(c.remove.is_empty(), "{:?}", c.remove);
        units[1].krate = Some("other".into());
        let c = choose(&units, &f, Criteria { older_than: Some(Duration::from_secs(100)), ..Criteria::default() });
        assert_eq!(removed(&units, &c), [("debug/incremental/app-1x".into(), Criterion::OlderThan)]);
    }

    #[test]
    fn a_size_budget_takes_the_least_recently_used_first() {
        let units = [
            unit("newest", 1, &[], "v", 300, 100),
            unit("oldest", 2, &[], "v", 100, 100),
            unit("middle", 3, &[], "v", 200, 100),
            unit("needs-oldest", 4, &[2], "v", 50, 100),
        ];
        let f = Facts { total_bytes: 450, ..facts("v", &["v"]) };
        let c = choose(&units, &f, Criteria { max_size: Some(250), ..Criteria::default() });
        // `oldest` is used through its dependent at 100; `needs-oldest` goes with it: 450 - 200 = 250 fits.
        assert_eq!(
            removed(&units, &c),
            [("needs-oldest".into(), Criterion::MaxSize), ("oldest".into(), Criterion::MaxSize)]
        );
        let tally = c.plan.by_criterion.iter().find(|(k, _, _)| *k == Criterion::MaxSize).unwrap().1;
        assert_eq!((tally.units, tally.bytes), (2, 200));
    }

    #[test]
    fn a_locked_profile_keeps_its_units() {
        let units = [unit("a-old", 1, &[], "rustc 1.90", 0, 10)];
        let mut f = facts("v", &["v"]);
        f.locked.insert("debug".into(), (Some(9), "/t/debug/.cargo-lock".into()));
        let c = choose(&units, &f, Criteria::default());
        assert!(c.remove.is_empty());
        assert_eq!(c.plan.kept.len(), 2, "the unit, and the profile: {:?}", c.plan.kept);
        assert!(c.plan.kept.iter().all(|k| k.reason == KeptReason::Locked));
    }
}
