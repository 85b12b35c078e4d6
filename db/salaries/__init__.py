"""The City of Chicago salaries: the file's parser, statistics, tables and store."""
