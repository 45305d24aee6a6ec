//! Policy evaluation for the gateway.
//!
//! This crate will hold CEL authorization, JWT / API-key / basic authentication, local and
//! Redis-backed rate limits, virtual-key budgets, prompt guards and CORS, each pure where it
//! can be and with I/O behind small traits. Its contents arrive with the policies issue.
