//! The admin calls on [`Client`]: create, update, delete and list named logs. Create and update
//! answer the log as the server holds it afterwards, list answers every log, each as the
//! generated [`LogInfo`]. A name outside the rules (1-200 characters of `[A-Za-z0-9._-]`, not `.`
//! or `..`) fails with `INVALID_ARGUMENT`, passed through as [`ClientError::Status`].

use tonic::Status;

use super::{Client, ClientError, Result};
use crate::api::v1::{
    CreateLogRequest, DeleteLogRequest, ListLogsRequest, LogInfo, LogSettings, UpdateLogRequest,
};

impl Client {
    /// Creates the log `name` with `settings` (absent fields follow the server's defaults) and
    /// answers it. A taken name fails with [`ClientError::LogExists`]; a server holding as many
    /// logs as it allows answers `RESOURCE_EXHAUSTED` (reason `LOG_LIMIT`).
    pub async fn create_log(
        &mut self,
        name: impl Into<String>,
        settings: LogSettings,
    ) -> Result<LogInfo> {
        let request = CreateLogRequest { name: name.into(), settings: Some(settings) };
        let response = self.default.inner.create_log(request).await?.into_inner();
        response.log.ok_or_else(no_log)
    }

    /// Replaces the settings of the log `name` that `settings` holds (the absent ones stay) and
    /// answers the log with its new settings. An unknown name fails with
    /// [`ClientError::LogNotFound`].
    pub async fn update_log(
        &mut self,
        name: impl Into<String>,
        settings: LogSettings,
    ) -> Result<LogInfo> {
        let request = UpdateLogRequest { name: name.into(), settings: Some(settings) };
        let response = self.default.inner.update_log(request).await?.into_inner();
        response.log.ok_or_else(no_log)
    }

    /// Deletes the log `name` and its records; streams open on it end with
    /// [`ClientError::LogNotFound`]. An unknown name fails with `LogNotFound`;
    /// [`DEFAULT_LOG`](super::DEFAULT_LOG) cannot be deleted (`FAILED_PRECONDITION`, passed
    /// through as [`ClientError::Status`]).
    pub async fn delete_log(&mut self, name: impl Into<String>) -> Result<()> {
        self.default.inner.delete_log(DeleteLogRequest { name: name.into() }).await?;
        Ok(())
    }

    /// Every log on the server, sorted by name.
    pub async fn list_logs(&mut self) -> Result<Vec<LogInfo>> {
        Ok(self.default.inner.list_logs(ListLogsRequest {}).await?.into_inner().logs)
    }
}

/// A response without its log: the server broke the contract.
fn no_log() -> ClientError {
    Status::internal("the server sent no log").into()
}
