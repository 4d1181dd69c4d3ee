"""Local Kinesis Data Firehose: records through the real transform Lambda into the raw bucket."""
