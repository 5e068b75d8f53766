# Reads proglab's CSV exports in R, keeping every answer as written (docs/researcher.md).
# proglab writes a missing value as an empty cell and nothing else; read.csv's default reads the
# text "NA" as missing and an empty text cell as "", so na.strings = "" turns that around.

# Columns that are text even where every value looks like a number or a logical.
text_columns <- c("participant", "recruiter_id", "condition", "label", "program",
                  "preprocessed_program", "programming_exp", "programming_game_exp", "item",
                  "answer")

# programs-csv, trials-csv, questionnaire-csv, a Psych-DS table, or the published file.
read_export <- function(path) {
  d <- read.csv(path, na.strings = "", colClasses = "character", encoding = "UTF-8")
  other <- setdiff(names(d), text_columns)
  d[other] <- lapply(d[other], type.convert, as.is = TRUE, na.strings = "")
  # skipped is written True/False, as in the published file; R reads only TRUE/true as logical.
  if ("skipped" %in% names(d)) d$skipped <- d$skipped == "True"
  d
}

# bonus-csv: no header; the recruiter's participant ID and the amount.
read_bonus <- function(path) {
  read.csv(path, header = FALSE, col.names = c("recruiter_id", "amount"),
           colClasses = c("character", "numeric"), na.strings = "", encoding = "UTF-8")
}
