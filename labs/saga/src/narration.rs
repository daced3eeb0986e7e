//! The demo's live sequence diagram: one line per message, in four lanes, like the guide's
//! diagram but in the terminal.

use owo_colors::OwoColorize;
use saga_core::{CommandKind, Event, LogEntry};

use crate::line::Reply;
use crate::order::Note;
use crate::system::Balances;

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
pub fn orchestrator_line(note: &Note) -> Option<String> {
    match note {
        Note::Logged(_, entry) => logged(entry),
        Note::Replied(command, reply) => Some(replied(command, reply)),
    }
}

fn logged(entry: &LogEntry) -> Option<String> {
    let text = match &entry.event {
        Event::SagaStarted => format!(
            "{}",
            "saga started: order is PENDING (semantic lock)".bold()
        ),
        Event::StepStarted { step, attempt } if *attempt > 1 => {
            format!(
                "{}",
                format!("retry step {step}, try {attempt} (after backoff)").yellow()
            )
        }
        Event::SagaCompleted => format!("{}", "✅ saga completed: order APPROVED".green().bold()),
        Event::SagaCompensated => {
            format!("{}", "↩ saga compensated: order CANCELLED".yellow().bold())
        }
        Event::NeedsAttention { step } => format!(
            "{}",
            format!("⚠ compensation of step {step} keeps failing: NEEDS ATTENTION")
                .red()
                .bold()
        ),
        _ => return None,
    };
    Some(format!("  {} {text}", "·".dimmed()))
}

fn replied(command: &saga_core::Command, reply: &Reply) -> String {
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
        CommandKind::Action => out.cyan().to_string(),
        CommandKind::Compensation => out.magenta().to_string(),
    };
    format!("{out}\n{back}{detail}")
}

/// The narration of one choreography event: who published it, as a broadcast line.
pub fn event_line(service: &str, event: &str) -> String {
    let from = lane(service);
    let failed = event.contains("Failed");
    let undo = event.contains("Refunded") || event.contains("Released");
    let text = format!("{} {event}", arrow(from, from, "publishes"));
    if failed {
        text.red().to_string()
    } else if undo {
        text.magenta().to_string()
    } else {
        text.cyan().to_string()
    }
}

/// The closing summary: what every service holds for `order_id`, and whether that is
/// consistent. Returned as text (not printed) so the demo and the snapshot tests share it.
pub fn balances(balances: &Balances, order_id: &str) -> String {
    let verdict = if balances.is_consistent() {
        "consistent ✅".green().to_string()
    } else {
        "NOT consistent: an operator must look ⚠".red().to_string()
    };
    [
        String::new(),
        format!("{}", format!("balances for {order_id}").bold()),
        format!("  order status      {}", balances.order_status.bold()),
        format!("  money held        {} cents", balances.money_held),
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
