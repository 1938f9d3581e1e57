//! What an import did, as the command prints it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Per kind: created, already imported (left), brought up to date (tokens).
    pub counts: BTreeMap<&'static str, [usize; 3]>,
    /// Items not imported, each with the reason.
    pub skipped: Vec<String>,
    /// Imported items with parts otpgate leaves out or treats differently.
    pub notes: Vec<String>,
    /// The default realm set.
    pub default_realm: Option<String>,
    /// otpgate admins replaced.
    pub replaced_admins: Vec<String>,
}

impl ImportReport {
    /// The report as the command prints it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let verb = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        let _ = writeln!(
            s,
            "{} from privacyIDEA:",
            if self.dry_run {
                "dry run, nothing written"
            } else {
                "import done"
            }
        );
        for (kind, [new, again, advanced]) in &self.counts {
            let _ = write!(s, "  {kind}: {verb} {new}");
            if *again > 0 {
                let _ = write!(s, ", {again} already imported before (left as they are)");
            }
            if *advanced > 0 {
                let _ = write!(
                    s,
                    ", {advanced} brought up to date (counter forward, disabled, revoked, locked, failures)"
                );
            }
            s.push('\n');
        }
        if let Some(d) = &self.default_realm {
            let _ = writeln!(s, "  default realm: {d}");
        }
        for a in &self.replaced_admins {
            let _ = writeln!(s, "  admin {a}: replaces otpgate's generated initial admin");
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "not imported ({}):", self.skipped.len());
            for x in &self.skipped {
                let _ = writeln!(s, "  - {x}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "notes ({}):", self.notes.len());
            for x in &self.notes {
                let _ = writeln!(s, "  - {x}");
            }
        }
        s
    }
}
