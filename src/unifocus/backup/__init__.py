"""Whole-database backup and restore (`unifocus backup FILE`, `unifocus restore FILE`)."""
