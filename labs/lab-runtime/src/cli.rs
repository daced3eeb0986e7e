//! The `--role` / `--port` shape of every lab's command line.
//!
//! Every lab's binary runs its narrated demo by default, or one service alone with
//! `--role NAME`, listening on `--port` (0: the role's own default). A lab flattens
//! [`RoleArgs`] into its clap arguments with its own [`Role`] enum, so `--help` reads the same
//! everywhere and the environment variables are the same (`LAB_ROLE`, `LAB_PORT`).

use clap::ValueEnum;

/// A lab's roles: the demo plus one value per service it can run alone.
pub trait Role: ValueEnum + Clone + Copy + Default + Send + Sync + 'static {
    /// The port this role listens on when `--port` is 0; 0 means any free port.
    fn default_port(self) -> u16 {
        0
    }
}

/// `--role` and `--port`, for `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoleArgs<R: Role> {
    /// What to run: the narrated demo (the default), or one service alone.
    #[arg(long, value_enum, env = "LAB_ROLE")]
    role: Option<R>,
    /// Port of a single role (0: the role's default port).
    #[arg(long, default_value_t = 0, env = "LAB_PORT")]
    port: u16,
}

impl<R: Role> RoleArgs<R> {
    /// The role asked for, or the default (the demo).
    pub fn role(&self) -> R {
        self.role.unwrap_or_default()
    }

    /// The port asked for, or the role's default when it was 0.
    pub fn port(&self) -> u16 {
        if self.port == 0 {
            self.role().default_port()
        } else {
            self.port
        }
    }

    /// True when `--port` (or `LAB_PORT`) was given a port other than 0.
    pub fn port_given(&self) -> bool {
        self.port != 0
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
    enum Part {
        #[default]
        Demo,
        Store,
    }

    impl Role for Part {
        fn default_port(self) -> u16 {
            match self {
                Part::Demo => 0,
                Part::Store => 4500,
            }
        }
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RoleArgs<Part>,
    }

    #[test]
    fn the_demo_is_the_default_and_a_role_has_its_port() {
        let cli = Cli::try_parse_from(["lab"]).expect("parse");
        assert_eq!(cli.run.role(), Part::Demo);
        assert_eq!(cli.run.port(), 0);
        let cli = Cli::try_parse_from(["lab", "--role", "store"]).expect("parse");
        assert_eq!((cli.run.role(), cli.run.port()), (Part::Store, 4500));
        let cli = Cli::try_parse_from(["lab", "--role", "store", "--port", "9"]).expect("parse");
        assert_eq!(cli.run.port(), 9);
        assert!(cli.run.port_given());
        assert!(Cli::try_parse_from(["lab", "--role", "nope"]).is_err());
    }
}
