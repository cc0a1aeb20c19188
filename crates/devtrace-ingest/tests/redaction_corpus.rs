//! The redaction corpora: real-format secrets in realistic surroundings must all be redacted
//! (with the right marker, the surroundings kept), and ordinary text (code, logs, the
//! third-party fixtures, this project's own sources) must come out unchanged.
//!
//! The secrets are fake but have the exact shape of real ones (prefixes, alphabets, lengths).
//! They are assembled at run time so this file does not itself look like a leak to scanners.

use devtrace_ingest::redact::Redactor;
use std::path::{Path, PathBuf};

fn alnum(len: usize, seed: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ALPHABET[(state % ALPHABET.len() as u32) as usize] as char
        })
        .collect()
}

fn hex(len: usize, seed: u32) -> String {
    alnum(len * 2, seed)
        .bytes()
        .map(|b| char::from(b"0123456789abcdef"[(b % 16) as usize]))
        .take(len)
        .collect()
}

fn upper_alnum(len: usize, seed: u32) -> String {
    alnum(len * 3, seed)
        .chars()
        .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        .take(len)
        .collect()
}

fn b64url(len: usize, seed: u32) -> String {
    alnum(len, seed)
        .chars()
        .enumerate()
        .map(|(i, c)| match i % 11 {
            3 => '-',
            7 => '_',
            _ => c,
        })
        .collect()
}

/// (rule expected, the text the rule replaces, the line it appears in). Redacting the line must
/// give exactly the line with that text replaced by the rule's marker.
fn secrets() -> Vec<(&'static str, String, String)> {
    let p = |parts: &[&str]| parts.concat();
    let mut out: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |rule: &'static str, secret: String, line: String| {
        out.push((rule, secret, line));
    };
    // Provider keys and tokens, each in the kind of place it leaks from.
    let gh = p(&["gh", "p_", &alnum(36, 1)]);
    add(
        "github_token",
        gh.clone(),
        format!("export GITHUB_TOKEN={gh}"),
    );
    let gho = p(&["gh", "o_", &alnum(36, 2)]);
    add(
        "github_token",
        gho.clone(),
        format!("oauth token: {gho} (expires in 8h)"),
    );
    let ghs = p(&["gh", "s_", &alnum(36, 3)]);
    add(
        "github_token",
        ghs.clone(),
        format!("remote: https://x-access-token:{ghs}@github.com/org/repo.git"),
    );
    let dtk = p(&["dt", "k_", &alnum(46, 40)]);
    add(
        "devtrace_token",
        dtk.clone(),
        format!("devtrace ls --server https://traces.example --token {dtk}"),
    );
    let dtk = p(&["dt", "k_", &alnum(46, 41)]);
    add(
        "devtrace_token",
        dtk.clone(),
        format!("export DEVTRACE_TOKEN={dtk}"),
    );
    let pat = p(&["github", "_pat_", &alnum(22, 4), "_", &alnum(59, 5)]);
    add(
        "github_fine_grained_token",
        pat.clone(),
        format!("gh auth login --with-token <<< {pat}"),
    );
    let glpat = p(&["glp", "at-", &alnum(20, 6)]);
    add(
        "gitlab_token",
        glpat.clone(),
        format!("PRIVATE-TOKEN: {glpat}"),
    );
    let ant = p(&["sk-", "ant-api03-", &b64url(93, 7), "AA"]);
    add(
        "anthropic_api_key",
        ant.clone(),
        format!("ANTHROPIC_API_KEY={ant}"),
    );
    let openai = p(&["sk-", "proj-", &b64url(120, 8)]);
    add(
        "openai_api_key",
        openai.clone(),
        format!("client = OpenAI(api_key=\"{openai}\")"),
    );
    let openai_classic = p(&["sk-", &alnum(48, 9)]);
    add(
        "openai_api_key",
        openai_classic.clone(),
        format!("Incorrect API key provided: {openai_classic}."),
    );
    let aws_id = p(&["AK", "IA", &upper_alnum(16, 10)]);
    add(
        "aws_access_key_id",
        aws_id.clone(),
        format!("aws_access_key_id = {aws_id}"),
    );
    let aws_secret = alnum(40, 11);
    add(
        "aws_secret_access_key",
        aws_secret.clone(),
        format!("aws_secret_access_key = {aws_secret}"),
    );
    let sts = p(&["AS", "IA", &upper_alnum(16, 12)]);
    add(
        "aws_access_key_id",
        sts.clone(),
        format!("{{\"AccessKeyId\": \"{sts}\", \"Expiration\": \"2026-01-01T00:00:00Z\"}}"),
    );
    let stripe = p(&["sk", "_live_", &alnum(24, 13)]);
    add(
        "stripe_key",
        stripe.clone(),
        format!("Stripe.api_key = '{stripe}'"),
    );
    let stripe_r = p(&["rk", "_test_", &alnum(24, 14)]);
    add(
        "stripe_key",
        stripe_r.clone(),
        format!("STRIPE_RESTRICTED={stripe_r}"),
    );
    let slack = p(&[
        "xo",
        "xb-",
        &hex(12, 15),
        "-",
        &hex(13, 16),
        "-",
        &alnum(24, 17),
    ]);
    add(
        "slack_token",
        slack.clone(),
        format!("SLACK_BOT_TOKEN={slack}"),
    );
    let hook = p(&[
        "https://hooks.",
        "slack.com/services/T",
        &upper_alnum(8, 18),
        "/B",
        &upper_alnum(8, 19),
        "/",
        &alnum(24, 20),
    ]);
    add(
        "slack_webhook",
        hook.clone(),
        format!("curl -X POST {hook} -d '{{\"text\":\"deployed\"}}'"),
    );
    let discord = p(&[
        "https://discord.com/api/",
        "webhooks/1234567890123/",
        &b64url(68, 21),
    ]);
    add(
        "discord_webhook",
        discord.clone(),
        format!("webhook_url: {discord}"),
    );
    let google = p(&["AI", "za", &b64url(35, 22)]);
    add(
        "google_api_key",
        google.clone(),
        format!("https://maps.googleapis.com/maps/api/geocode/json?key={google}"),
    );
    let gocspx = p(&["GOC", "SPX-", &b64url(28, 23)]);
    add(
        "google_oauth_secret",
        gocspx.clone(),
        format!("\"client_secret\": \"{gocspx}\","),
    );
    let ya29 = p(&["ya", "29.", &b64url(120, 24)]);
    add(
        "google_oauth_token",
        ya29.clone(),
        format!("access token {ya29}"),
    );
    let hf = p(&["hf", "_", &alnum(34, 25)]);
    add(
        "huggingface_token",
        hf.clone(),
        format!("huggingface-cli login --token {hf}"),
    );
    let groq = p(&["gs", "k_", &alnum(52, 26)]);
    add("groq_api_key", groq.clone(), format!("GROQ_API_KEY={groq}"));
    let npm = p(&["np", "m_", &alnum(36, 27)]);
    add(
        "npm_token",
        npm.clone(),
        format!("//registry.npmjs.org/:_authToken={npm}"),
    );
    let pypi = p(&["py", "pi-AgEIcHlwaS5vcmc", &b64url(70, 28)]);
    add("pypi_token", pypi.clone(), format!("password = {pypi}"));
    let sendgrid = p(&["S", "G.", &b64url(22, 29), ".", &b64url(43, 30)]);
    add(
        "sendgrid_api_key",
        sendgrid.clone(),
        format!("SENDGRID_API_KEY='{sendgrid}'"),
    );
    let twilio = p(&["S", "K", &hex(32, 31)]);
    add(
        "twilio_api_key",
        twilio.clone(),
        format!("twilio api key {twilio} created"),
    );
    let mailgun = p(&["ke", "y-", &alnum(32, 32)]);
    add(
        "mailgun_api_key",
        mailgun.clone(),
        format!("mg = Mailgun(\"{mailgun}\")"),
    );
    let doo = p(&["do", "p_v1_", &hex(64, 33)]);
    add(
        "digitalocean_token",
        doo.clone(),
        format!("doctl auth init -t {doo}"),
    );
    let shop = p(&["shp", "at_", &hex(32, 34)]);
    add(
        "shopify_token",
        shop.clone(),
        format!("X-Shopify-Access-Token: {shop}"),
    );
    let dapi = p(&["da", "pi", &hex(32, 35)]);
    add(
        "databricks_token",
        dapi.clone(),
        format!("DATABRICKS_TOKEN={dapi}"),
    );
    let telegram = p(&["123456789", ":AA", &b64url(33, 36)]);
    add(
        "telegram_bot_token",
        telegram.clone(),
        format!("https://api.telegram.org/bot{telegram}/getMe"),
    );
    let azure = p(&[&alnum(86, 37), "=="]);
    add(
        "azure_storage_key",
        azure.clone(),
        format!(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={azure};EndpointSuffix=core.windows.net"
        ),
    );
    // Generic credentials.
    let header = p(&[
        "e",
        "yJ",
        &b64url(30, 38),
        ".",
        "e",
        "yJ",
        &b64url(60, 39),
        ".",
        &b64url(43, 40),
    ]);
    add(
        "jwt",
        header.clone(),
        format!("{{\"id_token\": \"{header}\"}}"),
    );
    let bearer = b64url(40, 41);
    add(
        "bearer_token",
        bearer.clone(),
        format!("curl -H \"Authorization: Bearer {bearer}\" https://api.example.org/v1/me"),
    );
    let basic = p(&[&alnum(30, 42), "=="]);
    add(
        "authorization_header",
        basic.clone(),
        format!("Authorization: Basic {basic}"),
    );
    add(
        "url_password",
        "Tr0ub4dor&3".into(),
        "DATABASE_URL=postgres://app:Tr0ub4dor&3@db.internal:5432/orders".into(),
    );
    add(
        "url_password",
        "guest-pw-9".into(),
        "amqp://guest:guest-pw-9@rabbitmq:5672/%2f".into(),
    );
    add(
        "url_password",
        "s3cr3t".into(),
        "redis://default:s3cr3t@cache:6379/0".into(),
    );
    add(
        "password_parameter",
        "Pa55w0rd!".into(),
        "Server=sql1;Database=shop;User Id=sa;Password=Pa55w0rd!;".into(),
    );
    add(
        "password_parameter",
        "hunter2hunter2".into(),
        "mysql --user=root --password=hunter2hunter2 shop".into(),
    );
    add(
        "password_assignment",
        "correct-horse-battery".into(),
        "DB_PASSWORD: \"correct-horse-battery\"".into(),
    );
    add(
        "password_assignment",
        "p@ssw0rd-2026".into(),
        "{\"username\": \"admin\", \"password\": \"p@ssw0rd-2026\"}".into(),
    );
    let key_body = (0..6)
        .map(|i| alnum(64, 50 + i))
        .collect::<Vec<_>>()
        .join("\n");
    let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{key_body}\n-----END RSA PRIVATE KEY-----");
    add("private_key", pem.clone(), format!("cat id_rsa\n{pem}\n"));
    // Inside JSON the line breaks are the two characters `\n`.
    let openssh = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\\n{}\\n-----END OPENSSH PRIVATE KEY-----",
        alnum(70, 60)
    );
    add(
        "private_key",
        openssh.clone(),
        format!("{{\"private_key\": \"{openssh}\\n\"}}"),
    );
    // Cut off before its END line (a truncated log): everything from BEGIN on goes.
    let cut = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n{}",
        alnum(64, 61),
        alnum(40, 62)
    );
    add(
        "private_key",
        cut.clone(),
        format!("key (truncated by the log):\n{cut}"),
    );
    add(
        "email",
        "jane.doe@example.com".into(),
        "Author: Jane Doe <jane.doe@example.com>".into(),
    );
    add(
        "email",
        "ops+alerts@corp.example.co.uk".into(),
        "notify ops+alerts@corp.example.co.uk on failure".into(),
    );
    // Formats added with issue 15: env-file lines named for what they hold, more providers,
    // webhook secrets, app tokens, SAS signatures, every URL form of a password.
    for (seed, name, value) in [
        (200, "DB_PASSWORD", alnum(16, 200)),
        (201, "TWILIO_AUTH_TOKEN", hex(32, 201)),
        (
            202,
            "HEROKU_API_KEY",
            format!(
                "{}-{}-4{}-a{}-{}",
                hex(8, 202),
                hex(4, 203),
                hex(3, 204),
                hex(3, 205),
                hex(12, 206)
            ),
        ),
        (203, "DD_API_KEY", hex(32, 207)),
        (204, "MAILGUN_API_KEY", hex(32, 208)),
        (205, "AWS_SESSION_TOKEN", alnum(64, 209)),
        (206, "PGPASSWORD", alnum(12, 210)),
        (207, "SECRET_KEY_BASE", hex(64, 211)),
        (208, "BASIC_AUTH", format!("admin:{}", alnum(10, 212))),
    ] {
        let line = if seed % 2 == 0 {
            format!("{name}={value}")
        } else {
            format!("export {name}=\"{value}\"  # from the vault")
        };
        add("env_secret", value, line);
    }
    let whsec = p(&["wh", "sec_", &alnum(32, 220)]);
    add(
        "stripe_webhook_secret",
        whsec.clone(),
        format!("STRIPE_WEBHOOK_SIGNING=\"{whsec}\""),
    );
    let xapp = p(&[
        "xa",
        "pp-1-A",
        &upper_alnum(10, 221),
        "-",
        "1234567890123-",
        &hex(64, 222),
    ]);
    add(
        "slack_app_token",
        xapp.clone(),
        format!("app = App(token=os.environ['BOT'], app_token='{xapp}')"),
    );
    let xoxe = p(&["xo", "xe.xoxp-1-", &alnum(150, 223)]);
    add(
        "slack_config_token",
        xoxe.clone(),
        format!("config token {xoxe}"),
    );
    let sig = p(&[&alnum(20, 224), "%2B", &alnum(18, 225), "%3D"]);
    add(
        "azure_sas_signature",
        sig.clone(),
        format!(
            "GET https://acme.blob.core.windows.net/logs/app.log?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&spr=https&sig={sig} 200"
        ),
    );
    let sak = p(&[&alnum(43, 226), "="]);
    add(
        "azure_shared_access_key",
        sak.clone(),
        format!(
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={sak}"
        ),
    );
    let key_id = hex(40, 227);
    add(
        "gcp_private_key_id",
        key_id.clone(),
        format!(
            "{{\"type\": \"service_account\", \"project_id\": \"acme-prod\", \"private_key_id\": \"{key_id}\"}}"
        ),
    );
    let session = p(&["IQoJb3JpZ2luX2Vj", &alnum(180, 228), "=="]);
    add(
        "aws_session_token",
        session.clone(),
        format!("{{\"Credentials\": {{\"SessionToken\": \"{session}\"}}}}"),
    );
    let kube = p(&["LS0tLS1CRUdJTi", &alnum(80, 229), "="]);
    add(
        "kubeconfig_key_data",
        kube.clone(),
        format!("    client-key-data: {kube}"),
    );
    add(
        "url_password",
        "r3dis-pw".into(),
        "REDIS_URL=redis://:r3dis-pw@cache.internal:6379/0".into(),
    );
    add(
        "url_password",
        "p@ss:w0rd".into(),
        "mongodb+srv://svc:p@ss:w0rd@cluster0.abcde.mongodb.net/app?retryWrites=true".into(),
    );
    add(
        "url_password",
        "hunter22".into(),
        "git clone https://ana:hunter22@git.example.com/team/repo.git".into(),
    );
    let user_token = alnum(40, 230);
    add(
        "url_user_token",
        user_token.clone(),
        format!("git clone https://{user_token}@git.example.com/team/repo.git"),
    );
    let hex_user_token = hex(40, 231);
    add(
        "url_user_token",
        hex_user_token.clone(),
        format!("pip install git+https://{hex_user_token}@git.example.com/team/lib.git"),
    );
    // A known token as a URL's user keeps its own, more specific marker.
    let gitlab_in_url = p(&["glptt-", &hex(40, 232)]);
    add(
        "gitlab_other_token",
        gitlab_in_url.clone(),
        format!("pip install git+https://{gitlab_in_url}@gitlab.example.com/team/lib.git"),
    );
    add(
        "curl_user_password",
        "s3cret-pw".into(),
        "curl -u admin:s3cret-pw https://jenkins.internal/api/json".into(),
    );
    add(
        "cli_password_flag",
        "Sup3rSecret".into(),
        "mysql -h db -u root -pSup3rSecret shop < dump.sql".into(),
    );
    add(
        "cli_password_flag",
        "ssh-pw-42".into(),
        "sshpass -p ssh-pw-42 ssh deploy@10.0.0.5".into(),
    );
    add(
        "netrc_password",
        "netrc-pw-7".into(),
        "machine api.heroku.com login ana password netrc-pw-7".into(),
    );
    add(
        "password_assignment",
        "correct horse battery staple".into(),
        "{\"user\": \"ana\", \"password\": \"correct horse battery staple\"}".into(),
    );
    add(
        "password_parameter",
        "Odbc#Pw9".into(),
        "Driver={ODBC Driver 18};Server=db;Uid=app;Pwd=Odbc#Pw9;Encrypt=yes".into(),
    );
    let header_key = hex(32, 230);
    add(
        "api_key_header",
        header_key.clone(),
        format!("curl -H 'DD-API-KEY: {header_key}' https://api.datadoghq.com/api/v1/validate"),
    );
    let query = alnum(32, 231);
    add(
        "query_secret_parameter",
        query.clone(),
        format!("GET /v2/weather?city=Lyon&api_key={query}&units=metric 200 12ms"),
    );
    // Provider formats, each in one realistic place.
    let providers: Vec<(&'static str, String)> = vec![
        ("openrouter_api_key", p(&["sk-", "or-v1-", &hex(64, 240)])),
        ("gitlab_other_token", p(&["glp", "tt-", &hex(40, 241)])),
        (
            "gitlab_other_token",
            p(&["GR13", "48941", &b64url(20, 242)]),
        ),
        ("bitbucket_app_password", p(&["AT", "BB", &alnum(32, 243)])),
        (
            "atlassian_api_token",
            p(&["ATA", "TT3xFfGF0", &b64url(180, 244)]),
        ),
        ("xai_api_key", p(&["xa", "i-", &alnum(80, 245)])),
        ("perplexity_api_key", p(&["pp", "lx-", &alnum(48, 246)])),
        ("replicate_api_token", p(&["r8", "_", &alnum(37, 247)])),
        (
            "langsmith_api_key",
            p(&["lsv2", "_pt_", &hex(32, 248), "_", &hex(10, 249)]),
        ),
        ("linear_api_key", p(&["lin", "_api_", &alnum(40, 250)])),
        (
            "notion_token",
            p(&["nt", "n_", "12345678901", &alnum(35, 251)]),
        ),
        ("notion_token", p(&["sec", "ret_", &alnum(43, 252)])),
        (
            "postman_api_key",
            p(&["PM", "AK-", &hex(24, 253), "-", &hex(34, 254)]),
        ),
        (
            "sentry_token",
            p(&["sntr", "ys_", "eyJpYXQiOjE2", &alnum(80, 255)]),
        ),
        ("sentry_token", p(&["sntr", "yu_", &hex(64, 256)])),
        ("vault_token", p(&["hv", "s.", &b64url(90, 257)])),
        (
            "terraform_cloud_token",
            p(&[&alnum(14, 258), ".atlas", "v1.", &b64url(67, 259)]),
        ),
        ("doppler_token", p(&["dp", ".st.", &alnum(40, 260)])),
        ("pulumi_token", p(&["pu", "l-", &hex(40, 261)])),
        ("heroku_api_key", p(&["HR", "KU-", &b64url(60, 262)])),
        ("fly_token", p(&["Fly", "V1 fm2_", &b64url(200, 263)])),
        ("supabase_token", p(&["sb", "p_", &hex(40, 264)])),
        ("supabase_token", p(&["sb_", "secret_", &b64url(32, 265)])),
        (
            "planetscale_token",
            p(&["pscale", "_tkn_", &alnum(43, 266)]),
        ),
        ("netlify_token", p(&["nf", "p_", &alnum(36, 267)])),
        ("render_api_key", p(&["rn", "d_", &alnum(32, 268)])),
        ("dockerhub_token", p(&["dckr", "_pat_", &b64url(27, 269)])),
        ("rubygems_api_key", p(&["ruby", "gems_", &hex(48, 270)])),
        (
            "nuget_api_key",
            p(&["oy", "2", &alnum(43, 271).to_ascii_lowercase()]),
        ),
        ("grafana_token", p(&["gl", "c_", &alnum(60, 272), "=="])),
        (
            "grafana_token",
            p(&["gl", "sa_", &alnum(32, 273), "_", &hex(8, 274)]),
        ),
        ("newrelic_key", p(&["NR", "AK-", &upper_alnum(27, 275)])),
        (
            "dynatrace_token",
            p(&[
                "dt0",
                "c01.",
                &upper_alnum(24, 276),
                ".",
                &upper_alnum(64, 277),
            ]),
        ),
        ("square_token", p(&["sq0", "atp-", &b64url(22, 278)])),
        (
            "braintree_access_token",
            p(&[
                "access_token",
                "$production$",
                &alnum(16, 279).to_ascii_lowercase(),
                "$",
                &hex(32, 280),
            ]),
        ),
        (
            "mapbox_secret_token",
            p(&[
                "sk",
                ".eyJ1IjoiYWNtZSIsImEiOi",
                &b64url(30, 281),
                ".",
                &b64url(22, 282),
            ]),
        ),
        ("mailchimp_api_key", p(&[&hex(32, 283), "-us", "21"])),
        (
            "mailgun_private_key",
            p(&[&hex(32, 284), "-", &hex(8, 285), "-", &hex(8, 286)]),
        ),
        (
            "age_secret_key",
            p(&[
                "AGE-SECRET",
                "-KEY-1",
                &"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2)[..58],
            ]),
        ),
        (
            "onepassword_service_token",
            p(&["op", "s_eyJ", &b64url(120, 287)]),
        ),
        (
            "fcm_server_key",
            p(&["AAAA", &b64url(7, 288), ":APA91b", &b64url(134, 289)]),
        ),
        (
            "discord_bot_token",
            p(&[
                "MT",
                &alnum(22, 290),
                ".",
                &alnum(6, 291),
                ".",
                &b64url(38, 292),
            ]),
        ),
        (
            "twitter_bearer_token",
            p(&[&"A".repeat(22), &alnum(90, 293)]),
        ),
        ("meta_access_token", p(&["EA", "AG", &alnum(150, 294)])),
        ("alibaba_access_key_id", p(&["LT", "AI", &alnum(20, 295)])),
        (
            "azure_ad_client_secret",
            p(&["abc", "8Q~", &b64url(34, 296).replace('-', "_")]),
        ),
        (
            "azure_devops_pat",
            p(&[&alnum(52, 297), "AZ", "DO", &alnum(4, 298)]),
        ),
    ];
    for (n, (rule, secret)) in providers.into_iter().enumerate() {
        let line = match n % 4 {
            0 => format!("token {secret} rotated"),
            1 => format!("{{\"credentials\": {{\"value\": \"{secret}\"}}}}"),
            2 => format!("Error: 401 Unauthorized for key {secret} (revoked)"),
            _ => format!("config set auth.value {secret} --global"),
        };
        add(rule, secret, line);
    }
    out
}

#[test]
fn every_real_format_secret_is_redacted_with_its_marker_and_nothing_else_changes() {
    let redactor = Redactor::builtin();
    let corpus = secrets();
    assert!(
        corpus.len() >= 30,
        "the corpus has {} secrets",
        corpus.len()
    );
    let mut failures = Vec::new();
    for (rule, secret, line) in &corpus {
        assert!(
            line.contains(secret.as_str()),
            "corpus entry for {rule} does not contain its secret"
        );
        let expected = line.replace(secret.as_str(), &format!("[REDACTED:{rule}]"));
        let redacted = redactor.redact(line);
        if redacted != expected {
            failures.push(format!(
                "{rule}:\n  in:       {line:?}\n  out:      {redacted:?}\n  expected: {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not redacted as expected:\n{}",
        failures.join("\n")
    );
}

const ORDINARY: &[&str] = &[
    // Code that handles credentials without containing any.
    "password = getpass.getpass(\"Password: \")",
    "api_key = os.environ[\"OPENAI_API_KEY\"]",
    "const token = req.headers.authorization?.split(' ')[1];",
    "let secret = std::env::var(\"DEVTRACE_SECRET\").context(\"DEVTRACE_SECRET is unset\")?;",
    "if (!process.env.STRIPE_KEY) throw new Error('missing STRIPE_KEY');",
    "def check_password(user, password): return bcrypt.checkpw(password, user.hash)",
    "fn redact(&self, text: &str) -> Cow<'_, str> { /* … */ }",
    "SELECT id, email, created_at FROM users WHERE id = $1",
    "git clone https://github.com/open-telemetry/opentelemetry-rust.git",
    "export PATH=\"$HOME/.cargo/bin:$PATH\"; PWD=/home/dev/project cargo test --workspace",
    "npx create-next-app@latest todo-app --typescript --tailwind --eslint --app",
    "pnpm add lucide-react@0.542.0 next@15.5.2 react@19.1.0",
    "docker pull golang@sha256:8f5b4a3c1b2d9e0f7a6c5b4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
    "postgres://localhost:5432/orders?sslmode=disable",
    "git clone git@github.com:org/repo.git && git push git@gitlab.com:team/app.git main",
    // A URL's user that is a name, not a token.
    "git clone https://bob@git.example.com/team/repo.git",
    "git remote set-url origin https://x-access-token@github.com/org/repo.git",
    "curl -H 'Authorization: Bearer $TOKEN' https://api.example.org",
    // Logs with ids, hashes and times.
    "2025-11-21T13:00:00.123Z INFO request_id=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 took 12.5ms",
    "thread 'main' panicked at src/main.rs:42:17: called `Option::unwrap()` on a `None` value",
    "error[E0599]: no method named `redact` found for struct `Redactor` in the current scope",
    "commit 3f64c3e1c0ffee5e2b7d8a9c4b1e6f7a8d9c0b1a  Merge pull request #4217 from feature/sessions",
    "npm warn Unknown env config \"verify-deps-before-run\". This will stop working in the next major version of npm.",
    "ModuleNotFoundError: No module named 'requests'",
    "Error: listen EADDRINUSE: address already in use :::3000",
    "uuid 019b64e5-57fa-7463-b644-fba7e456f905 sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "The secret to fast tests is to run fewer of them; see docs/testing.md for the token budget.",
    "Bearer tokens are sent in the Authorization header; never log them.",
    "base64 -d <<< aGVsbG8gd29ybGQ= | wc -c",
    // Look-alikes added with issue 15: a URL's user is not an e-mail address, placeholders and
    // shell references are not secrets, ids and hashes are not keys.
    "git clone https://bob@github.com/org/repo.git",
    "git clone ssh://git@gitlab.com/team/app.git && open https://ana@bitbucket.org/acme/site",
    "DB_PASSWORD=<your-password>",
    "GITHUB_TOKEN=<your-token> make release",
    "API_KEY=xxx",
    "export NPM_TOKEN=${NPM_TOKEN}",
    "export GITHUB_TOKEN=$(gh auth token)",
    "OPENAI_API_KEY=",
    "MAX_TOKENS=4096 KEYBOARD_LAYOUT=us MONKEY=banana NEXTAUTH_URL=http://localhost:3000",
    "max_tokens=512 input_tokens: 12 cache_read_input_tokens: 2048",
    "      password: ${{ secrets.DB_PASSWORD }}",
    "{\"password\": \"<your-password>\", \"api_key\": \"xxx\"}",
    "curl -u $USER:$PASS https://example.org && curl -u \"$CREDS\" https://example.org",
    "mysql -u root -p shop && mysql -h db -P 3306 -u app shop",
    "docker run -e POSTGRES_PASSWORD -p 5432:5432 postgres:17",
    "    client-key-data: DATA+OMITTED",
    "https://hooks.slack.com/services/XXX/YYY/ZZZ",
    "https://acme.blob.core.windows.net/c/b?sv=2022-11-02&sig=REDACTED",
    "{\"id\": \"7c9e6679-7425-40de-944c-e07af10f6afa\", \"trace_id\": \"5b8efff798038103d269b633813fc60c\"}",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 md5 d41d8cd98f00b204e9800998ecf8427e",
    "\"integrity\": \"sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==\"",
    "Merge 9fceb02d0ae598e95dc970b74767f19372d61af8 into 3f64c3e; tag v1.24.0-rc.1",
    "\"token_type\": \"Bearer\", \"expires_in\": 3600, \"scope\": \"repo read:org\"",
    "print(\"password: \" + masked + \" is too short\")",
];

#[test]
fn ordinary_text_is_unchanged() {
    let redactor = Redactor::builtin();
    let changed: Vec<String> = ORDINARY
        .iter()
        .filter_map(|line| {
            let out = redactor.redact(line);
            (out != *line).then(|| format!("{line:?} -> {out:?}"))
        })
        .collect();
    assert!(
        changed.is_empty(),
        "ordinary text was redacted:\n{}",
        changed.join("\n")
    );
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every line of the `.json`/`.jsonl` files under `dirs` comes out of the redactor byte for
/// byte the same; returns how many lines were read.
fn assert_fixture_lines_unchanged(dirs: &[PathBuf]) -> usize {
    let redactor = Redactor::builtin();
    let mut files = Vec::new();
    for dir in dirs {
        files_under(dir, &mut files);
    }
    let mut lines = 0;
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jsonl" || e == "json"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            let out = redactor.redact(line);
            assert!(out == line, "{}:{} changed: {out}", file.display(), n + 1);
        }
    }
    lines
}

/// The repository's own fixtures (synthetic transcripts and OTLP documents) hold no secret.
#[test]
fn the_own_fixtures_are_unchanged() {
    let root = repo_root();
    let lines = assert_fixture_lines_unchanged(&[
        root.join("tests/fixtures/claude-code"),
        root.join("crates/devtrace-ingest/tests/fixtures/sessions"),
        root.join("crates/devtrace-cli/tests/fixtures/otlp"),
    ]);
    assert!(lines > 300, "only {lines} fixture lines were read");
}

/// The third-party fixtures (real transcripts and OTLP examples, in the directory
/// `DEVTRACE_EXTERNAL_FIXTURES` names) hold no secret either.
#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn the_third_party_fixtures_are_unchanged() {
    let dir = std::env::var_os("DEVTRACE_EXTERNAL_FIXTURES").unwrap_or_else(|| {
        panic!("set DEVTRACE_EXTERNAL_FIXTURES to the third-party fixtures directory")
    });
    let lines = assert_fixture_lines_unchanged(&[PathBuf::from(dir)]);
    assert!(lines > 500, "only {lines} fixture lines were read");
}

/// This project's own sources and documentation are ordinary text too.
#[test]
fn project_sources_are_unchanged() {
    let redactor = Redactor::builtin();
    let root = repo_root();
    let mut files = Vec::new();
    for dir in [
        "crates/devtrace-store/src",
        "crates/devtrace-analyze/src",
        "crates/devtrace-server/src",
    ] {
        files_under(&root.join(dir), &mut files);
    }
    files.extend(["docs/ARCHITECTURE.md", "docs/analysis.md", "README.md"].map(|f| root.join(f)));
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let out = redactor.redact(&text);
        if out != text {
            let first = text
                .lines()
                .zip(out.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a:?} -> {b:?}"));
            panic!("{} changed: {first:?}", file.display());
        }
    }
}

/// The Python helpers ship a copy of the rules file; it must be this one, byte for byte.
#[test]
fn the_python_helpers_ship_the_same_rules_file() {
    let python_copy = repo_root().join("sdk/python/devtrace/redaction_rules.json");
    let copy = std::fs::read_to_string(&python_copy)
        .unwrap_or_else(|e| panic!("{}: {e}", python_copy.display()));
    assert!(
        copy == devtrace_ingest::redact::BUILTIN_RULES_JSON,
        "{} differs from crates/devtrace-ingest/src/redaction_rules.json: copy the canonical file over it",
        python_copy.display()
    );
}

/// The Python helpers (sdk/python/devtrace/redact.py, run by a bare `python3`) redact every
/// corpus line and every ordinary line exactly as the server does.
#[test]
fn the_python_helpers_redact_exactly_like_the_server() {
    use std::io::Write as _;
    let redactor = Redactor::builtin();
    let mut lines: Vec<String> = secrets().into_iter().map(|(_, _, line)| line).collect();
    lines.extend(ORDINARY.iter().map(|l| l.to_string()));
    // Overlapping rules: a token inside a URL keeps its specific marker on both sides.
    lines.push(format!(
        "git remote add origin https://x-access-token:ghp_{}@github.com/o/r.git",
        alnum(36, 99)
    ));
    let script = r#"
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("redact", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["redact"] = module
spec.loader.exec_module(module)
print(json.dumps([module.redact(line) for line in json.load(sys.stdin)]))
"#;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(repo_root().join("sdk/python/devtrace/redact.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (Python 3 is a set-up requirement): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&lines).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{python} failed");
    let from_python: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(from_python.len(), lines.len());
    let differ: Vec<String> = lines
        .iter()
        .zip(&from_python)
        .filter_map(|(line, python_out)| {
            let server = redactor.redact(line);
            (server != *python_out)
                .then(|| format!("in:     {line:?}\nserver: {server:?}\npython: {python_out:?}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "Python and the server redact differently:\n{}",
        differ.join("\n")
    );
}

/// Every built-in rule has at least one case in the corpus, and the corpus counts reported in
/// docs/RELIABILITY.md ("Redaction") are the ones this prints (`cargo test -p devtrace-ingest
/// --test redaction_corpus -- --nocapture corpus_counts`).
#[test]
fn corpus_counts_every_rule_has_a_case() {
    let redactor = Redactor::builtin();
    let corpus = secrets();
    let rules: Vec<&str> = redactor.rule_names().collect();
    let without: Vec<&&str> = rules
        .iter()
        .filter(|rule| !corpus.iter().any(|(r, _, _)| r == *rule))
        .collect();
    assert!(without.is_empty(), "rules with no corpus case: {without:?}");
    let caught = corpus
        .iter()
        .filter(|(rule, secret, line)| {
            let out = redactor.redact(line);
            !out.contains(secret.as_str()) && out.contains(&format!("[REDACTED:{rule}]"))
        })
        .count();
    let false_positives = ORDINARY
        .iter()
        .filter(|line| redactor.redact(line) != **line)
        .count();
    println!(
        "redaction corpus: {} rules, {} secrets, {caught} caught; {} look-alikes, {false_positives} changed",
        rules.len(),
        corpus.len(),
        ORDINARY.len()
    );
    assert!(rules.len() >= 60, "{} rules", rules.len());
    assert_eq!(caught, corpus.len());
    assert_eq!(false_positives, 0);
}

/// Found by the `redact` fuzz target: redacting an already redacted text changed it again.
#[test]
fn redacting_twice_changes_nothing_more() {
    let redactor = devtrace_ingest::redact::Redactor::builtin();
    for text in [
        "DB_PASSWORD=hunter2er2 h1234://bob@githD --user B_PASSWORD=hunt",
        "curl --user B_PASSWORD=hunter22 https://example.test",
    ] {
        let once = redactor.redact(text).into_owned();
        let twice = redactor.redact(&once).into_owned();
        assert_eq!(twice, once, "input {text:?}");
    }
}
