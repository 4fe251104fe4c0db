"""The submit Cloud Function (a package only so type checkers tell it from dispatch's main.py)."""
