//! The demo's live sequence diagram: one line per message, in four lanes, like the guide's
//! diagram but in the terminal.
//!
//! Colours are decided once, at the edge: [`Palette::detect`] (`lab-runtime`'s detection)
//! paints only for a terminal without `NO_COLOR` (<https://no-color.org>); pipes, files and
//! snapshots get plain text.

use lab_runtime::palette::Tone;
use saga_core::{CommandKind, Event, LogEntry, SagaDefinition};

use crate::choreography::Note as ChoreographyNote;
use crate::line::Reply;
use crate::order::Note;
use crate::system::Balances;

/// `lab-runtime`'s palette under the names this demo's lines speak in: what a piece of text
/// is in a saga (a milestone, a compensation, an alarm), each one of the shared tones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Palette(lab_runtime::Palette);

impl Palette {
    /// Plain text: pipes, files, snapshots and `NO_COLOR`.
    pub const PLAIN: Palette = Palette(lab_runtime::Palette::PLAIN);
    /// ANSI colours.
    pub const COLORED: Palette = Palette(lab_runtime::Palette::COLORED);

    /// Colours when standard output is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Palette {
        Palette(lab_runtime::Palette::detect())
    }

    fn paint(self, text: &str, tone: Tone) -> String {
        self.0.paint(text, tone)
    }

    /// Bold, uncoloured: headings, names and the saga's own milestones (started, resumed).
    pub fn bold(self, text: &str) -> String {
        self.paint(text, Tone::Strong)
    }
    /// Red: failures and dead letters.
    pub fn red(self, text: &str) -> String {
        self.paint(text, Tone::Red)
    }
    /// Bold red: what an operator must look at.
    pub fn alarm(self, text: &str) -> String {
        self.paint(text, Tone::Bad)
    }
    /// Green: success.
    pub fn green(self, text: &str) -> String {
        self.paint(text, Tone::Green)
    }
    /// Bold green: a saga completed.
    pub fn success(self, text: &str) -> String {
        self.paint(text, Tone::Good)
    }
    /// Yellow: retries and waits.
    pub fn yellow(self, text: &str) -> String {
        self.paint(text, Tone::Yellow)
    }
    /// Bold yellow: a saga compensated.
    pub fn undone(self, text: &str) -> String {
        self.paint(text, Tone::Warn)
    }
    /// Cyan: actions.
    pub fn cyan(self, text: &str) -> String {
        self.paint(text, Tone::Cyan)
    }
    /// Magenta: compensations.
    pub fn magenta(self, text: &str) -> String {
        self.paint(text, Tone::Magenta)
    }
    /// Dimmed: asides.
    pub fn dimmed(self, text: &str) -> String {
        self.paint(text, Tone::Dim)
    }
}

const LANES: [&str; 4] = ["order", "payment", "inventory", "shipping"];
const WIDTH: usize = 18;

fn lane(participant: &str) -> usize {
    LANES
        .iter()
        .position(|name| *name == participant)
        .unwrap_or(0)
}

/// The lane headers.
pub fn header() -> String {
    let mut line = String::from("  ");
    for name in LANES {
        line.push_str(&format!("{name:<WIDTH$}"));
    }
    line
}

/// An arrow from lane `from` to lane `to` labelled `label` (a self-arrow when equal).
pub fn arrow(from: usize, to: usize, label: &str) -> String {
    let mut cells: Vec<String> = (0..LANES.len())
        .map(|_| format!("{:<WIDTH$}", "│"))
        .collect();
    if from == to {
        cells[from] = format!("│ ⟲ {label}");
        return format!("  {}", cells[..=from].concat());
    }
    let (left, right) = (from.min(to), from.max(to));
    let span = (right - left) * WIDTH - 1;
    let text = format!(" {label} ");
    // The status emoji take two terminal columns.
    let wide = text
        .chars()
        .filter(|c| matches!(c, '✅' | '❌' | '⏳'))
        .count();
    let dashes = span.saturating_sub(text.chars().count() + wide + 1);
    let body = if to > from {
        format!("{text}{}▶", "─".repeat(dashes))
    } else {
        format!("◀{}{text}", "─".repeat(dashes))
    };
    let mut line = String::from("  ");
    for cell in cells.iter().take(left) {
        line.push_str(cell);
    }
    line.push('│');
    line.push_str(&body);
    for cell in cells.iter().skip(right) {
        line.push_str(cell);
    }
    line.trim_end().to_owned()
}

/// The narration of one orchestrator note, or `None` for notes not worth a line.
pub fn orchestrator_line(note: &Note, palette: Palette) -> Option<String> {
    match note {
        Note::Logged(_, entry) => logged(entry, palette),
        Note::Replied(command, reply) => Some(replied(command, reply, palette)),
    }
}

fn logged(entry: &LogEntry, palette: Palette) -> Option<String> {
    let text = match &entry.event {
        Event::SagaStarted => palette.bold("saga started: order is PENDING (semantic lock)"),
        Event::StepStarted { step, attempt } if *attempt > 1 => {
            palette.yellow(&format!("retry step {step}, try {attempt} (after backoff)"))
        }
        Event::SagaCompleted => palette.success("✅ saga completed: order APPROVED"),
        Event::SagaCompensated => palette.undone("↩ saga compensated: order CANCELLED"),
        Event::NeedsAttention { step } => palette.alarm(&needs_attention(*step)),
        Event::Resumed => {
            palette.bold("↻ saga resumed: order PENDING again, the stuck step is tried again")
        }
        _ => return None,
    };
    Some(format!("  {} {text}", palette.dimmed("·")))
}

/// Why a saga stopped at `step`, in the demo's saga: a compensation that kept failing, or a
/// step after the pivot that was refused (it cannot be undone, so a person decides).
fn needs_attention(step: usize) -> String {
    let definition = SagaDefinition::order_fulfilment();
    let name = definition
        .steps
        .get(step)
        .map_or_else(|| format!("step {step}"), |s| s.name.clone());
    if definition.is_compensatable(step) {
        format!("⚠ the compensation of {name} keeps failing: NEEDS ATTENTION")
    } else {
        format!("⚠ {name} was refused after the pivot, which cannot be undone: NEEDS ATTENTION")
    }
}

fn replied(command: &saga_core::Command, reply: &Reply, palette: Palette) -> String {
    let to = lane(&command.participant);
    let verb = match command.kind {
        CommandKind::Action => command.operation.clone(),
        CommandKind::Compensation => format!("↩ {}", command.operation),
    };
    let (mark, detail) = if reply.is_success() {
        ("✅".to_owned(), String::new())
    } else if reply.is_business_refusal() {
        ("❌".to_owned(), format!(" {}", reply.detail()))
    } else {
        ("⏳".to_owned(), format!(" {} (retryable)", reply.status))
    };
    if to == 0 {
        return format!("{} {mark}{detail}", arrow(0, 0, &verb));
    }
    let out = arrow(0, to, &verb);
    let back = arrow(to, 0, &format!("{mark} {}", reply.status));
    let out = match command.kind {
        CommandKind::Action => palette.cyan(&out),
        CommandKind::Compensation => palette.magenta(&out),
    };
    format!("{out}\n{back}{detail}")
}

/// The narration of one choreography event: who published it, as a broadcast line.
pub fn event_line(service: &str, event: &str, palette: Palette) -> String {
    let from = lane(service);
    let failed = event.contains("Failed");
    let undo = event.contains("Refunded") || event.contains("Released");
    let text = format!("{} {event}", arrow(from, from, "publishes"));
    if failed {
        palette.red(&text)
    } else if undo {
        palette.magenta(&text)
    } else {
        palette.cyan(&text)
    }
}

/// A duration as people read it: `150 ms`, `2 s`, `1.5 s`.
pub fn duration(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1_000 {
        format!("{millis} ms")
    } else if millis.is_multiple_of(1_000) {
        format!("{} s", millis / 1_000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

// ANCHOR: choreography_note
/// The narration of a consumer's retry, dead letter or redelivery, or of a recovery on start:
/// what the choreography is waiting for, so a wait never looks like a hang.
pub fn choreography_note(note: &ChoreographyNote, palette: Palette) -> String {
    let text = match note {
        ChoreographyNote::Retrying {
            service,
            message_id,
            attempt,
            error,
            delay,
        } => palette.yellow(&format!(
            "⏳ {service} cannot handle {message_id} yet ({error}); try {} in {}",
            attempt + 1,
            duration(*delay)
        )),
        ChoreographyNote::DeadLettered {
            service,
            message_id,
            error,
        } => palette.alarm(&format!(
            "✉ {service} parked {message_id} as a dead letter: {error}"
        )),
        ChoreographyNote::Redelivering {
            service,
            message_id,
            error,
            after,
        } => palette.red(&format!(
            "⏳ {service} can neither apply {message_id} nor park it ({error}); the bus delivers it again in {}",
            duration(*after)
        )),
        ChoreographyNote::AwaitingRedelivery {
            service,
            messages,
            ack_wait,
        } => palette.yellow(&format!(
            "⏳ recovering: {messages} message(s) reached {service} before the restart and were never acknowledged; JetStream delivers them again once its ack wait ({}) is over",
            duration(*ack_wait)
        )),
        ChoreographyNote::Republished { service, messages } => palette.yellow(&format!(
            "↻ recovering: {service} publishes {messages} event(s) of unfinished sagas again (the in-process bus lost what it carried)"
        )),
    };
    format!("  {text}")
}
// ANCHOR_END: choreography_note

/// The closing summary: what every service holds for `order_id`, and whether that is
/// consistent. Returned as text (not printed) so the demo and the snapshot tests share it.
pub fn balances(balances: &Balances, order_id: &str, palette: Palette) -> String {
    let verdict = if balances.is_consistent() {
        palette.green("consistent ✅")
    } else {
        palette.red("NOT consistent: an operator must look ⚠")
    };
    [
        String::new(),
        palette.bold(&format!("balances for {order_id}")),
        format!(
            "  order status      {}",
            palette.bold(&balances.order_status.to_string())
        ),
        format!("  money held        {} cents", balances.money_held),
        format!("  money captured    {} cents", balances.money_captured),
        format!("  stock reserved    {} units", balances.stock_reserved),
        format!("  courier booked    {}", balances.shipping_scheduled),
        format!(
            "  totals            payment {}, inventory {}, shipping {}",
            balances.payment, balances.inventory, balances.shipping
        ),
        format!("  {verdict}"),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrows_point_between_lanes() {
        let right = arrow(0, 2, "reserve");
        assert!(right.contains("reserve") && right.ends_with('▶') || right.contains('▶'));
        let left = arrow(2, 0, "200");
        assert!(left.contains('◀'));
    }
}
