//! The JSON provider's guard against mass removals: a remote that answers `[]` (or stops
//! paging early) where it had records is more likely broken than purged.

/// Why a pass that would remove `gone` of `live` records is refused, if it is: more than
/// `max_percent` of them (100: never refused).
pub(super) fn removal_guard(gone: u64, live: u64, max_percent: u8) -> Option<String> {
    if max_percent >= 100 || gone.saturating_mul(100) <= live.saturating_mul(max_percent.into()) {
        return None;
    }
    Some(format!(
        "refused to mark {gone} of {live} records removed (more than {max_percent}%): an empty \
         or short answer is taken for a fault of the remote; nothing marked removed \
         (EYE_FETCH_MAX_REMOVED_PERCENT)"
    ))
}

#[cfg(test)]
mod tests {
    use super::removal_guard;

    #[test]
    fn the_removal_guard_refuses_mass_removals_only() {
        assert_eq!(removal_guard(1, 10, 50), None);
        assert_eq!(removal_guard(5, 10, 50), None);
        assert!(removal_guard(6, 10, 50).is_some());
        assert!(removal_guard(10, 10, 50).is_some());
        assert!(removal_guard(1, 1, 50).is_some());
        assert_eq!(removal_guard(10, 10, 100), None);
        assert!(removal_guard(1, 10, 0).is_some());
    }
}
