use cicd_agents_buildkit::{build::BuildOptions, progress::ProgressMode, Client};

#[tokio::main]
async fn main() {
    let addr = std::env::var("CICD_TESTENV_DOCKER_ADDR").unwrap();
    let token = std::env::var("CICD_TESTENV_GIT_TOKEN").unwrap();
    let registry = std::env::var("CICD_TESTENV_REGISTRY").unwrap();
    let client = Client::connect(&addr).await.unwrap();
    let options = BuildOptions::remote("http://127.0.0.1:8418/smoke-app.git#main:sub")
        .git_auth_token("127.0.0.1", token)
        .network("host")
        .tag(format!("{registry}/smoke/app:1"))
        .push(true);
    let mut sink = ProgressMode::Plain.stderr_sink();
    match client.build_with_progress(&options, sink.as_mut()).await {
        Ok(result) => println!("OK {:?} {:?}", result.digest, result.image_names),
        Err(err) => println!("ERR {err}"),
    }
}
