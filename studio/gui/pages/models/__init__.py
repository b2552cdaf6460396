"""The Models page: the registry's versions, one version's details (aliases, tags, card,
lineage), comparing versions, and the end of a version's life."""
