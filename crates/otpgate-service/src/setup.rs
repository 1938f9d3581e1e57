//! What a new installation still lacks before a first SMS login works, in the order to fix it
//! (user store → realm → gateway → default gateway): the console's dashboard and forms show
//! it, so a new admin is not left with "the SMS could not be sent" at the first login.

use crate::{Result, Services};

/// One thing the set-up lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupGap {
    /// What is missing, in words.
    pub message: String,
    /// The console page that fixes it.
    pub fix_at: &'static str,
}

impl Services {
    /// What the set-up lacks, first things first (empty: nothing).
    pub async fn setup_gaps(&self) -> Result<Vec<SetupGap>> {
        let settings = self.settings().await?;
        let gateways: Vec<String> = self
            .store()
            .gateway_list()
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect();
        let mut gaps = Vec::new();
        let mut gap = |message: String, fix_at: &'static str| {
            gaps.push(SetupGap { message, fix_at });
        };
        if settings.resolvers.is_empty() {
            gap(
                "No user store yet: users come from a user store (resolver). Add one first.".into(),
                "/ui/admin/resolvers/new",
            );
        }
        if settings.realms.is_empty() {
            gap(
                "No realm yet: a realm groups user stores; logins name it (or use the default realm)."
                    .into(),
                "/ui/admin/realms",
            );
        }
        for r in settings.realms.iter().filter(|r| r.resolvers.is_empty()) {
            gap(
                format!(
                    "The realm {} has no user store: nobody can sign in there.",
                    r.name
                ),
                "/ui/admin/realms",
            );
        }
        if gateways.is_empty() {
            gap(
                "No SMS gateway yet: without one no SMS goes out.".into(),
                "/ui/admin/gateways",
            );
        } else {
            match settings.config.sms_identifier.as_deref() {
                None | Some("") => gap(
                    "No default SMS gateway: tokens without a gateway of their own cannot send. Make one the default."
                        .into(),
                    "/ui/admin/gateways",
                ),
                Some(d) if !gateways.iter().any(|g| g == d) => gap(
                    format!("The default SMS gateway {d} does not exist: tokens without a gateway of their own cannot send."),
                    "/ui/admin/gateways",
                ),
                Some(_) => {}
            }
        }
        Ok(gaps)
    }
}
