"""Edges to other systems, implementing interfaces that the domain defines."""
