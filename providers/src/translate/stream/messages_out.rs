//! The writing side shared by the translators to Anthropic stream events: `message_start`,
//! content blocks with increasing indexes (start, deltas, stop), `message_delta` and
//! `message_stop`, and the error events that close a stream.

use super::{Progress, TRUNCATED_MESSAGE, anthropic_error_event, truncated};
use crate::Error;
use crate::anthropic::{
    Block, BlockDelta, DeltaUsage, MessageDeltaBody, MessagesResponse, MessagesUsage, StreamEvent,
};
use crate::sse;

/// The client's stream of Anthropic events and what has been sent on it. `K` tells open
/// blocks apart (their kind, and whatever else decides whether the next piece continues one).
pub(super) struct MessagesOut<K> {
    /// Usage so far and whether a block delta was sent.
    pub(super) progress: Progress,
    /// `message_start` was sent.
    pub(super) started: bool,
    /// The open block: its index and key.
    open: Option<(u32, K)>,
    /// The index of the next block.
    next_index: u32,
    /// `message_stop` (or an error) sent; everything after is ignored.
    pub(super) stopped: bool,
}

impl<K> Default for MessagesOut<K> {
    fn default() -> Self {
        Self {
            progress: Progress::default(),
            started: false,
            open: None,
            next_index: 0,
            stopped: false,
        }
    }
}

/// Writes one named event.
fn send(out: &mut Vec<u8>, event: &StreamEvent, name: &str) -> Result<(), Error> {
    sse::write_json_event(out, Some(name), event)
}

/// `message_delta` usage from the counts (cache writes left out).
pub(super) fn delta_usage(counts: &MessagesUsage) -> DeltaUsage {
    DeltaUsage {
        output_tokens: Some(counts.output_tokens),
        input_tokens: Some(counts.input_tokens),
        cache_creation_input_tokens: None,
        cache_read_input_tokens: counts.cache_read_input_tokens,
    }
}

impl<K: Copy + PartialEq> MessagesOut<K> {
    /// `message_start` for an empty assistant message.
    pub(super) fn message_start(
        &mut self,
        out: &mut Vec<u8>,
        id: String,
        model: String,
        usage: MessagesUsage,
    ) -> Result<(), Error> {
        self.started = true;
        let message = MessagesResponse {
            id,
            kind: "message".into(),
            role: "assistant".into(),
            model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage,
        };
        send(out, &StreamEvent::MessageStart { message }, "message_start")
    }

    /// The open block, if any: its index and key.
    pub(super) fn open(&self) -> Option<(u32, K)> {
        self.open
    }

    /// `content_block_stop` for the open block, if any.
    pub(super) fn close_block(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some((index, _)) = self.open.take() {
            send(
                out,
                &StreamEvent::ContentBlockStop { index },
                "content_block_stop",
            )?;
        }
        Ok(())
    }

    /// Opens a new block (closing the open one); returns its index.
    pub(super) fn open_block(
        &mut self,
        out: &mut Vec<u8>,
        key: K,
        block: Block,
    ) -> Result<u32, Error> {
        self.close_block(out)?;
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, key));
        let start = StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        };
        send(out, &start, "content_block_start")?;
        Ok(index)
    }

    /// The index of the open block of `key`, opening one (`block`) if needed.
    pub(super) fn block_for(
        &mut self,
        out: &mut Vec<u8>,
        key: K,
        block: impl FnOnce() -> Block,
    ) -> Result<u32, Error> {
        match self.open {
            Some((index, k)) if k == key => Ok(index),
            _ => self.open_block(out, key, block()),
        }
    }

    /// A `content_block_delta` for block `index`.
    pub(super) fn delta(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        delta: BlockDelta,
    ) -> Result<(), Error> {
        self.progress.output_started = true;
        let event = StreamEvent::ContentBlockDelta { index, delta };
        send(out, &event, "content_block_delta")
    }

    /// Closes the open block, then `message_delta` (stop reason, stop sequence and usage) and
    /// `message_stop`.
    pub(super) fn stop(
        &mut self,
        out: &mut Vec<u8>,
        reason: &str,
        sequence: Option<String>,
        usage: DeltaUsage,
    ) -> Result<(), Error> {
        self.close_block(out)?;
        let delta = StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(reason.into()),
                stop_sequence: sequence,
            },
            usage: Some(usage),
        };
        send(out, &delta, "message_delta")?;
        send(out, &StreamEvent::MessageStop, "message_stop")?;
        self.stopped = true;
        Ok(())
    }

    /// Closes the open block, then an `error` event (`kind`: its Anthropic error type);
    /// nothing once stopped.
    pub(super) fn error(
        &mut self,
        out: &mut Vec<u8>,
        kind: Option<&str>,
        message: &str,
    ) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        self.close_block(out)?;
        self.stopped = true;
        anthropic_error_event(out, kind, message)
    }

    /// Closes a stream cut short: the truncation error event; always `Err`.
    pub(super) fn truncated_end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.error(out, None, TRUNCATED_MESSAGE)?;
        Err(truncated())
    }
}
