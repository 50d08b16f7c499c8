"""Dagster as deployed: Postgres storage, a code server, webserver and daemon, each in its own
container (the stack), the code image built offline (its Dockerfiles ship here), and the
throwaway Postgres cluster. Imports the Docker SDK; never Dagster itself (it runs Dagster's processes).
"""
