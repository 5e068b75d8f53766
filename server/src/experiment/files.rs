//! Where the files an experiment refers to (level files, Markdown) come from: the disk next to the
//! experiment file, or the binary for the bundled experiments.

use std::path::PathBuf;

/// Where an experiment's referenced files (map files, Markdown) are read from.
pub trait Files {
    /// The file's text, or a message saying why it cannot be read.
    fn read(&self, name: &str) -> Result<String, String>;
}

/// Files next to the experiment file on disk.
pub struct DiskFiles {
    pub dir: PathBuf,
}

impl Files for DiskFiles {
    fn read(&self, name: &str) -> Result<String, String> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Files embedded in the binary.
pub struct EmbeddedFiles(pub &'static [(&'static str, &'static str)]);

impl Files for EmbeddedFiles {
    fn read(&self, name: &str) -> Result<String, String> {
        self.0
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| format!("no bundled file named `{name}`"))
    }
}
