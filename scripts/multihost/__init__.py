"""Many hosts on one machine: network namespaces and the wire between them (docs/deploy.md, Across hosts)."""
