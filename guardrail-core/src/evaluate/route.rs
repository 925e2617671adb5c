//! Step 9: whether an authenticated machine may use the route it requested.
//!
//! Project membership, secret grants and access policies live in the store, so the core defines
//! only the question and the shape of the answer; the server implements [`RouteAuthorizer`] over
//! the records it loaded for the request.

use std::fmt;

use crate::ids::{ProjectId, SecretId};
use crate::machine::Machine;

/// A route of the machine API, with the ids it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MachineRoute {
    /// `GET /v1/secret/{secretId}`: read one secret's value.
    ReadSecret(SecretId),
    /// `GET /v1/secrets`: list the secrets the machine may read.
    ListSecrets,
    /// `POST /v1/secrets/list` with `{"projectId"}`: list one project's secrets.
    ListProjectSecrets(ProjectId),
    /// `POST /v1/secrets/export` with an empty body or `{"projectId"}`: export values.
    Export(Option<ProjectId>),
    /// `POST /v1/secrets/poll`. Access to each watched secret is reported inside the response
    /// (`access_denied`), so the route itself is open to every authenticated machine unless the
    /// authorizer decides otherwise.
    Poll,
    /// `GET /v1/cli/projects`: the official CLI's project list.
    CliProjects,
    /// `GET /v1/cli/secrets`: the official CLI's secret list.
    CliSecrets,
}

impl MachineRoute {
    /// A short name for audit details, such as `read_secret`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReadSecret(_) => "read_secret",
            Self::ListSecrets => "list_secrets",
            Self::ListProjectSecrets(_) => "list_project_secrets",
            Self::Export(_) => "export",
            Self::Poll => "poll",
            Self::CliProjects => "cli_projects",
            Self::CliSecrets => "cli_secrets",
        }
    }
}

/// Route authorization for step 9, implemented by the server over its stored grants.
pub trait RouteAuthorizer {
    /// Decides whether `machine`, which passed steps 1 to 8, may use `route`.
    fn authorize(&self, machine: &Machine, route: &MachineRoute) -> RouteDecision;
}

/// The result of a [`RouteAuthorizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    Allow,
    Deny(RouteDenial),
}

/// A denied route: the status the client sees and the reason the audit entry keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDenial {
    pub status: DenialStatus,
    pub reason: RouteDenialReason,
}

/// The status of a step 9 denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialStatus {
    /// 403: the resource exists and the machine may not use it.
    Forbidden,
    /// 404: the resource does not exist, or the machine may not learn that it does.
    NotFound,
}

impl DenialStatus {
    /// The HTTP status code: 403 or 404.
    pub fn code(self) -> u16 {
        match self {
            Self::Forbidden => 403,
            Self::NotFound => 404,
        }
    }
}

/// Why a route was denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteDenialReason {
    /// The machine is not a member of the project.
    NotProjectMember { project: ProjectId },
    /// The machine holds no grant on the secret.
    NoSecretGrant { secret: SecretId },
    /// An access policy bound to the secret denied the read; `policy` names it.
    AccessPolicy { secret: SecretId, policy: String },
    /// The secret does not exist.
    SecretNotFound { secret: SecretId },
    /// The project does not exist.
    ProjectNotFound { project: ProjectId },
}

impl fmt::Display for RouteDenialReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotProjectMember { project } => {
                write!(f, "machine is not a member of project `{project}`")
            }
            Self::NoSecretGrant { secret } => {
                write!(f, "machine holds no grant on secret `{secret}`")
            }
            Self::AccessPolicy { secret, policy } => {
                write!(f, "access policy `{policy}` denies secret `{secret}`")
            }
            Self::SecretNotFound { secret } => write!(f, "secret `{secret}` not found"),
            Self::ProjectNotFound { project } => write!(f, "project `{project}` not found"),
        }
    }
}
