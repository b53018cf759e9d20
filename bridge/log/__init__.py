"""The tamper-evident log (DESIGN.md, "The log"): the Merkle tree, signed notes and the offline
verifier, which import nothing of the server, and the writer the server appends with."""
