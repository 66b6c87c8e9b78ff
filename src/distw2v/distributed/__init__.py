"""Distributed training: column-partitioned parameter-server shards, their client, and the
Spark driver."""
