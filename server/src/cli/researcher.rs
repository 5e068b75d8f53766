//! `proglab researcher add|remove|list`: researcher accounts.

use std::io::BufRead;

use crate::researcher::{self, auth};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  proglab researcher add ada            asks for the password on stdin
  echo 'a long passphrase' | proglab researcher add ada --password-stdin
  proglab researcher list --json
  proglab researcher remove ada")]
pub struct ResearcherArgs {
    #[command(subcommand)]
    pub command: ResearcherCommand,
    #[command(flatten)]
    pub database: super::DatabaseArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum ResearcherCommand {
    /// Create an account (the password is read from stdin, at least 10 characters).
    Add {
        username: String,
        /// Read the password from stdin without a prompt (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and sign it out everywhere.
    Remove { username: String },
    /// List the accounts.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn main(args: ResearcherArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let research = args.database.connect().await?.research;
        let actor = researcher::cli_actor();
        let now = crate::clock::now();
        match args.command {
            ResearcherCommand::Add {
                username,
                password_stdin,
            } => {
                if !password_stdin {
                    eprintln!(
                        "password for {username} (at least {} characters), then Enter:",
                        auth::MIN_PASSWORD_LEN
                    );
                }
                let mut password = String::new();
                std::io::stdin().lock().read_line(&mut password)?;
                let password = password.trim_end_matches(['\n', '\r']);
                auth::add_researcher(research.as_ref(), &username, password, &actor, now).await?;
                eprintln!("added researcher {username}");
            }
            ResearcherCommand::Remove { username } => {
                if !research.remove_researcher(&username).await? {
                    anyhow::bail!("there is no researcher named `{username}`");
                }
                researcher::audit(
                    research.as_ref(),
                    &actor,
                    "researcher_remove",
                    None,
                    username.clone(),
                    now,
                )
                .await?;
                eprintln!("removed researcher {username}");
            }
            ResearcherCommand::List { json } => {
                let accounts = research.researchers().await?;
                if json {
                    super::print_json(&serde_json::json!({ "researchers": accounts }))?;
                } else {
                    let mut text = String::new();
                    for account in &accounts {
                        let created = crate::clock::rfc3339(account.created_at);
                        text.push_str(&format!("{}\t{created}\n", account.username));
                    }
                    super::print_stdout(&text)?;
                }
            }
        }
        Ok(())
    })
}
