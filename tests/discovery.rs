//! Discovery: server reflection, v1 and v1alpha, describes the Log service, and the `google.rpc`
//! error detail types are registered so tools can decode them; `GetServers` names the servers.

mod common;

use common::{for_each_log, start_server};
use girok::api::v1::log_client::LogClient;
use girok::api::v1::{GetServersRequest, OffsetsRequest, Server};
use tonic_reflection::pb::{v1, v1alpha};

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services_and_know_the_error_details() {
    // Both reflection versions list log.v1.Log and health, and resolve google.rpc.ErrorInfo.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let channel = server.channel().await;

        let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
        let ask = |request| v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let requests = vec![
            ask(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
            ask(v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "google.rpc.ErrorInfo".into(),
            )),
        ];
        let mut responses = client
            .server_reflection_info(futures_util::stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let listed = responses.message().await.unwrap().unwrap().message_response.unwrap();
        let v1::server_reflection_response::MessageResponse::ListServicesResponse(list) = listed
        else {
            panic!("expected a service list, got {listed:?}");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"log.v1.Log".to_string()), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
        let file = responses.message().await.unwrap().unwrap().message_response.unwrap();
        assert!(
            matches!(
                file,
                v1::server_reflection_response::MessageResponse::FileDescriptorResponse(_)
            ),
            "ErrorInfo not resolvable: {file:?}"
        );

        let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "log.v1.Log".into(),
                ),
            ),
        };
        let mut responses = alpha
            .server_reflection_info(futures_util::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let file = responses.message().await.unwrap().unwrap().message_response.unwrap();
        assert!(
            matches!(
                file,
                v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_)
            ),
            "log.v1.Log not resolvable over v1alpha: {file:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_single_node_answers_get_servers_with_itself_as_the_leader() {
    // As a cluster's clients will: a single node is the whole cluster, its leader and a voter,
    // reachable at the address it listens on; a linearizable Offsets is an ordinary one.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = LogClient::new(server.channel().await);
        let servers = client.get_servers(GetServersRequest {}).await.unwrap().into_inner().servers;
        let expected =
            Server { id: 1, rpc_addr: server.addr.to_string(), is_leader: true, voter: true };
        assert_eq!(servers, [expected]);
        let request = OffsetsRequest { log: String::new(), linearizable: true };
        let offsets = client.offsets(request).await.unwrap().into_inner();
        assert_eq!((offsets.lowest_offset, offsets.next_offset), (0, 0));
    })
    .await;
}
