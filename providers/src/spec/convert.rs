//! `spec.ai` + `spec.policies` → proto `AiBackend`. Errors name the field at fault.

use agora_proto::resource as pb;

use super::*;
use crate::error::Error;

type Result<T> = std::result::Result<T, Error>;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        message: message.into(),
    }
}

/// Turns an `auth` block into credentials: the local config reads keys from files and the
/// environment, the controller from Secrets. `at` is the block's field path.
pub type AuthResolver<'a> = dyn FnMut(&AuthConfig, &str) -> Result<pb::BackendAuth> + 'a;

/// Converts `ai` (one provider, or groups of providers in priority order) with the
/// backend's `policies`. `at` is the field path of the backend; `name` names providers
/// that have no name of their own.
pub fn ai_backend(
    name: &str,
    ai: &AiConfig,
    policies: Option<&BackendPoliciesConfig>,
    at: &str,
    auth: &mut AuthResolver<'_>,
) -> Result<pb::AiBackend> {
    let backend_auth = policies.and_then(|p| p.auth.as_ref());
    let groups = match (&ai.provider, ai.groups.is_empty()) {
        (Some(p), true) => vec![pb::AiProviderGroup {
            providers: vec![provider(
                p,
                &format!("{at}.ai.provider"),
                backend_auth,
                name,
                auth,
            )?],
        }],
        (None, false) => {
            let mut groups = Vec::new();
            for (gi, g) in ai.groups.iter().enumerate() {
                if g.providers.is_empty() {
                    return Err(invalid(
                        format!("{at}.ai.groups[{gi}].providers"),
                        "a group needs a provider",
                    ));
                }
                let mut providers = Vec::new();
                for (pi, p) in g.providers.iter().enumerate() {
                    providers.push(provider(
                        p,
                        &format!("{at}.ai.groups[{gi}].providers[{pi}]"),
                        backend_auth,
                        &format!("{name}-{gi}-{pi}"),
                        auth,
                    )?);
                }
                groups.push(pb::AiProviderGroup { providers });
            }
            groups
        }
        (Some(_), false) => {
            return Err(invalid(
                format!("{at}.ai"),
                "set either provider or groups, not both",
            ));
        }
        (None, true) => return Err(invalid(format!("{at}.ai"), "needs a provider or groups")),
    };
    let ai_policy = policies.and_then(|p| p.ai.as_ref());
    let json_map = |m: &std::collections::BTreeMap<String, serde_json::Value>| {
        m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    };
    let prompt = |which: fn(&PromptPolicyConfig) -> &Vec<PromptMessageConfig>, field: &str| {
        let list = ai_policy.and_then(|a| a.prompt.as_ref()).map(which);
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, m)| {
                if !["system", "user", "assistant"].contains(&m.role.as_str()) {
                    return Err(invalid(
                        format!("{at}.policies.ai.prompt.{field}[{i}].role"),
                        "must be system, user or assistant",
                    ));
                }
                Ok(pb::PromptMessage {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()
    };
    let model_aliases = ai_policy
        .map(|a| a.model_aliases.clone())
        .unwrap_or_default();
    let virtual_models = virtual_models(ai, &groups, &model_aliases, at)?;
    Ok(pb::AiBackend {
        groups,
        model_aliases,
        virtual_models,
        defaults: ai_policy.map(|a| json_map(&a.defaults)).unwrap_or_default(),
        overrides: ai_policy
            .map(|a| json_map(&a.overrides))
            .unwrap_or_default(),
        prompt_prepend: prompt(|p| &p.prepend, "prepend")?,
        prompt_append: prompt(|p| &p.append, "append")?,
    })
}

/// `ai.virtualModels`: names unique and distinct from the aliases, every target naming one
/// of the backend's providers and ending up with a model (its own or the provider's).
fn virtual_models(
    ai: &AiConfig,
    groups: &[pb::AiProviderGroup],
    aliases: &std::collections::BTreeMap<String, String>,
    at: &str,
) -> Result<Vec<pb::VirtualModel>> {
    let mut out: Vec<pb::VirtualModel> = Vec::new();
    for (vi, v) in ai.virtual_models.iter().enumerate() {
        let vat = format!("{at}.ai.virtualModels[{vi}]");
        if v.name.is_empty() {
            return Err(invalid(format!("{vat}.name"), "must not be empty"));
        }
        if out.iter().any(|o| o.name == v.name) {
            return Err(invalid(
                format!("{vat}.name"),
                format!("virtual model {:?} is defined twice", v.name),
            ));
        }
        if aliases.contains_key(&v.name) {
            return Err(invalid(
                format!("{vat}.name"),
                format!(
                    "{:?} is also a key of policies.ai.modelAliases; use one or the other",
                    v.name
                ),
            ));
        }
        if v.targets.is_empty() {
            return Err(invalid(
                format!("{vat}.targets"),
                "needs at least one target",
            ));
        }
        let mut targets = Vec::new();
        for (ti, t) in v.targets.iter().enumerate() {
            let tat = format!("{vat}.targets[{ti}]");
            let Some(p) = groups
                .iter()
                .flat_map(|g| &g.providers)
                .find(|p| p.name == t.provider)
            else {
                let known: Vec<&str> = groups
                    .iter()
                    .flat_map(|g| &g.providers)
                    .map(|p| p.name.as_str())
                    .collect();
                return Err(invalid(
                    format!("{tat}.provider"),
                    format!(
                        "no provider named {:?} in this backend (known: {})",
                        t.provider,
                        known.join(", ")
                    ),
                ));
            };
            let model = t.model.clone().unwrap_or_default();
            if model.is_empty() && p.model.is_empty() {
                return Err(invalid(
                    format!("{tat}.model"),
                    format!("needed: provider {:?} has no model of its own", p.name),
                ));
            }
            if t.when.as_deref().is_some_and(|w| w.trim().is_empty()) {
                return Err(invalid(format!("{tat}.when"), "empty condition"));
            }
            targets.push(pb::VirtualModelTarget {
                provider: t.provider.clone(),
                model,
                weight: t.weight.unwrap_or(1),
                priority: t.priority.unwrap_or(0),
                when: t.when.clone().unwrap_or_default(),
            });
        }
        out.push(pb::VirtualModel {
            name: v.name.clone(),
            targets,
        });
    }
    Ok(out)
}

fn provider(
    p: &ProviderConfig,
    at: &str,
    backend_auth: Option<&AuthConfig>,
    default_name: &str,
    resolve: &mut AuthResolver<'_>,
) -> Result<pb::AiProvider> {
    use pb::ai_provider::Format;
    let v = vendor(p, at)?;
    let preset = match &p.preset {
        None => None,
        Some(name) => {
            let preset = crate::presets::preset(name).ok_or_else(|| {
                let known: Vec<&str> = crate::presets::PRESETS.iter().map(|p| p.name).collect();
                invalid(
                    format!("{at}.preset"),
                    format!("unknown preset {name:?}; known: {}", known.join(", ")),
                )
            })?;
            if proto_format(preset.format()) != v.format {
                return Err(invalid(
                    format!("{at}.preset"),
                    format!("preset {name:?} speaks another API than this provider kind"),
                ));
            }
            Some(preset)
        }
    };
    let (default_host, default_tls, default_port, default_path) = match preset {
        Some(pr) => {
            let after_scheme = pr
                .base_url
                .split_once("://")
                .map_or(pr.base_url, |(_, r)| r);
            let port = after_scheme
                .split_once(':')
                .and_then(|(_, port)| port.parse().ok())
                .unwrap_or(pr.default_port);
            (
                pr.host().to_string(),
                pr.tls,
                Some(port),
                pr.path_prefix.to_string(),
            )
        }
        None => (
            v.host.clone(),
            p.host.is_none() || p.port == Some(443),
            None,
            String::new(),
        ),
    };
    let host = p.host.clone().unwrap_or(default_host);
    let tls = p.tls.unwrap_or(default_tls);
    let port = p
        .port
        .or(default_port)
        .unwrap_or(if tls { 443 } else { 80 });
    // Empty: the vendor's default prefix (`/v1`, `/v1beta`, ...).
    let path_prefix = p.path.clone().unwrap_or(default_path);
    if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
        return Err(invalid(format!("{at}.path"), "must start with '/'"));
    }
    if p.policies.as_ref().is_some_and(|pp| pp.ai.is_some()) {
        return Err(invalid(
            format!("{at}.policies.ai"),
            "AI policies belong on the backend, not on one provider",
        ));
    }
    let own_auth = p.policies.as_ref().and_then(|pp| pp.auth.as_ref());
    if own_auth.or(backend_auth).is_some_and(|a| a.aws.is_some()) && v.vendor != "bedrock" {
        return Err(invalid(
            format!("{at}.policies.auth.aws"),
            "AWS credentials only apply to bedrock providers",
        ));
    }
    let auth = own_auth
        .or(backend_auth)
        .map(|a| resolve(a, &format!("{at}.policies.auth")))
        .transpose()?;
    let format: Format = v.format;
    Ok(pb::AiProvider {
        name: p.name.clone().unwrap_or_else(|| default_name.to_string()),
        format: format as i32,
        model: v.model.unwrap_or_default(),
        host,
        port: port.into(),
        path_prefix: path_prefix.trim_end_matches('/').to_string(),
        tls,
        auth,
        vendor: v.vendor.to_string(),
        region: v.region,
        project_id: v.project_id,
        api_version: v.api_version,
        deployment: v.deployment,
        models: p.models.clone(),
    })
}

/// The proto format of a provider wire format.
fn proto_format(f: crate::WireFormat) -> pb::ai_provider::Format {
    use pb::ai_provider::Format;
    match f {
        crate::WireFormat::OpenAi => Format::Openai,
        crate::WireFormat::Anthropic => Format::Anthropic,
        crate::WireFormat::Gemini => Format::Gemini,
        crate::WireFormat::Bedrock => Format::Bedrock,
    }
}

/// What a provider's vendor key decides: wire format, default host, and vendor fields.
struct Vendor {
    vendor: &'static str,
    format: pb::ai_provider::Format,
    host: String,
    model: Option<String>,
    region: String,
    project_id: String,
    api_version: String,
    deployment: String,
}

fn vendor(p: &ProviderConfig, at: &str) -> Result<Vendor> {
    use pb::ai_provider::Format;
    let set = [
        p.openai.is_some(),
        p.anthropic.is_some(),
        p.gemini.is_some(),
        p.vertexai.is_some(),
        p.bedrock.is_some(),
        p.azureopenai.is_some(),
    ];
    if set.iter().filter(|x| **x).count() != 1 {
        return Err(invalid(
            at,
            "set exactly one provider kind (openai, anthropic, gemini, vertexai, bedrock, azureopenai)",
        ));
    }
    let base = |vendor, format, host: &str, model: &Option<String>| Vendor {
        vendor,
        format,
        host: host.to_string(),
        model: model.clone(),
        region: String::new(),
        project_id: String::new(),
        api_version: String::new(),
        deployment: String::new(),
    };
    Ok(if let Some(m) = &p.openai {
        base("openai", Format::Openai, "api.openai.com", &m.model)
    } else if let Some(m) = &p.anthropic {
        base(
            "anthropic",
            Format::Anthropic,
            "api.anthropic.com",
            &m.model,
        )
    } else if let Some(m) = &p.gemini {
        base(
            "gemini",
            Format::Gemini,
            "generativelanguage.googleapis.com",
            &m.model,
        )
    } else if let Some(v) = &p.vertexai {
        let region = v.region.clone().unwrap_or_else(|| "us-central1".into());
        let host = if region == "global" {
            "aiplatform.googleapis.com".to_string()
        } else {
            format!("{region}-aiplatform.googleapis.com")
        };
        // Anthropic models on Vertex speak the Anthropic format; the rest Gemini.
        let format = if v.model.as_deref().is_some_and(|m| m.starts_with("claude")) {
            Format::Anthropic
        } else {
            Format::Gemini
        };
        Vendor {
            region,
            project_id: v.project_id.clone(),
            ..base("vertexai", format, &host, &v.model)
        }
    } else if let Some(b) = &p.bedrock {
        Vendor {
            region: b.region.clone(),
            ..base(
                "bedrock",
                Format::Bedrock,
                &format!("bedrock-runtime.{}.amazonaws.com", b.region),
                &b.model,
            )
        }
    } else if let Some(a) = &p.azureopenai {
        let host = a
            .endpoint
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        if host.is_empty() || host.contains('/') {
            return Err(invalid(
                format!("{at}.azureopenai.endpoint"),
                "expected https://RESOURCE.openai.azure.com",
            ));
        }
        Vendor {
            api_version: a.api_version.clone().unwrap_or_else(|| "2024-10-21".into()),
            deployment: a.deployment_name.clone().unwrap_or_default(),
            ..base("azureopenai", Format::Openai, &host, &a.model)
        }
    } else {
        return Err(invalid(at, "no provider kind"));
    })
}

/// `policies.auth.aws` without a Secret: both static keys, or neither (the proxy then walks
/// the default credential chain at run time), and the role to assume, if any.
pub fn aws_credentials(aws: &AwsAuthConfig, at: &str) -> Result<pb::AwsCredentials> {
    let creds = pb::AwsCredentials {
        access_key_id: aws.access_key_id.clone().unwrap_or_default(),
        secret_access_key: aws.secret_access_key.clone().unwrap_or_default(),
        session_token: aws.session_token.clone().unwrap_or_default(),
        assume_role_arn: aws
            .assume_role
            .as_ref()
            .map(|r| r.role_arn.clone())
            .unwrap_or_default(),
    };
    if creds.access_key_id.is_empty() != creds.secret_access_key.is_empty()
        || (creds.access_key_id.is_empty() && !creds.session_token.is_empty())
    {
        return Err(invalid(
            at,
            "set accessKeyId and secretAccessKey together (sessionToken only with them), or neither for the default credential chain",
        ));
    }
    if aws.assume_role.is_some() && !creds.assume_role_arn.starts_with("arn:") {
        return Err(invalid(
            format!("{at}.assumeRole.roleArn"),
            "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
        ));
    }
    Ok(creds)
}

/// `policies.auth.gcp`: rejects what the proxy does not mint (ID tokens: `type: IdToken`,
/// `audience`).
pub fn check_gcp(gcp: &GcpAuthConfig, at: &str) -> Result<()> {
    match gcp.token_type.as_deref() {
        None | Some("AccessToken") => {}
        Some(other) => {
            return Err(invalid(
                format!("{at}.type"),
                format!("{other:?} is not supported; only AccessToken"),
            ));
        }
    }
    if gcp.audience.is_some() {
        return Err(invalid(
            format!("{at}.audience"),
            "only valid with type IdToken, which is not supported",
        ));
    }
    Ok(())
}

/// An inline service-account key (`gcp.serviceAccountKey`): a JSON string, or the document
/// written as an object.
pub fn inline_gcp_key(v: &serde_json::Value, at: &str) -> Result<String> {
    match v {
        serde_json::Value::String(s) => Ok(s.trim().to_string()),
        serde_json::Value::Object(_) => Ok(v.to_string()),
        _ => Err(invalid(
            at,
            "a service-account key: a JSON document (string or object)",
        )),
    }
}
