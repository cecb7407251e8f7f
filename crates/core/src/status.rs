use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a string-backed enum with `as_str`, `Display` and `FromStr`, so the
/// database, the API and the CLI spell every value the same way.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownValue { kind: stringify!($name), value: other.to_string() }),
                }
            }
        }
    };
}

/// A stored string that is not one of the enum's values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {kind} value {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

string_enum!(
    /// Spec: `Application.status`.
    AppStatus {
        Running = "running",
        Deploying = "deploying",
        Failed = "failed",
        Stopped = "stopped",
    }
);

string_enum!(
    /// Spec: `Deployment.status`, plus `queued` (waiting for a build slot),
    /// `superseded` (served until a newer deployment replaced it) and
    /// `cancelled` (stopped by a user before it finished).
    DeploymentStatus {
        Queued = "queued",
        Building = "building",
        Pushing = "pushing",
        Deploying = "deploying",
        Running = "running",
        Failed = "failed",
        RolledBack = "rolled_back",
        Superseded = "superseded",
        Cancelled = "cancelled",
    }
);

impl DeploymentStatus {
    /// A deployment in a final state never changes again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Failed
                | DeploymentStatus::RolledBack
                | DeploymentStatus::Superseded
                | DeploymentStatus::Cancelled
        )
    }

    /// Still on its way to running.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Queued
                | DeploymentStatus::Building
                | DeploymentStatus::Pushing
                | DeploymentStatus::Deploying
        )
    }
}

string_enum!(
    /// Spec: `DeploymentEvent.type`.
    EventType {
        BuildStarted = "build_started",
        BuildCompleted = "build_completed",
        BuildFailed = "build_failed",
        DeployStarted = "deploy_started",
        DeployCompleted = "deploy_completed",
        DeployFailed = "deploy_failed",
        HealthCheckPassed = "health_check_passed",
        HealthCheckFailed = "health_check_failed",
        RollbackInitiated = "rollback_initiated",
        RollbackCompleted = "rollback_completed",
    }
);

string_enum!(
    /// Roles per organisation, ordered: viewer < developer < admin.
    Role {
        Viewer = "viewer",
        Developer = "developer",
        Admin = "admin",
    }
);

impl Role {
    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Developer => 1,
            Role::Admin => 2,
        }
    }

    /// True when this role grants at least what `other` grants.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in DeploymentStatus::ALL {
            assert_eq!(s.as_str().parse::<DeploymentStatus>().ok(), Some(*s));
            assert_eq!(
                serde_json::to_string(s).ok(),
                Some(format!("\"{}\"", s.as_str()))
            );
        }
        for e in EventType::ALL {
            assert_eq!(e.as_str().parse::<EventType>().ok(), Some(*e));
        }
        assert!("exploded".parse::<DeploymentStatus>().is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.at_least(Role::Developer));
        assert!(Role::Developer.at_least(Role::Viewer));
        assert!(!Role::Viewer.at_least(Role::Developer));
        assert!(Role::Viewer.at_least(Role::Viewer));
    }

    #[test]
    fn final_and_in_flight_are_disjoint() {
        for s in DeploymentStatus::ALL {
            assert!(!(s.is_final() && s.is_in_flight()), "{s}");
        }
    }
}
