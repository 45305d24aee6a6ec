//! LLM wire formats and provider adapters.
//!
//! This crate will hold one module per client-facing API (OpenAI chat/responses/embeddings,
//! Anthropic messages, Gemini) and per provider (OpenAI, Anthropic, Gemini, Vertex AI,
//! Bedrock, Azure OpenAI, plus a preset table for OpenAI-compatible vendors), translating
//! requests and responses (streaming included) both ways. It is pure: no sockets, no Pingora.
//! Its contents arrive with the LLM gateway issue.
