"""Platform code under the domain: database, settings, change tracking, column types, time, backup and transfer."""
