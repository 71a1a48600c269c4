"""`python -m luodi …` is the `luodi` command (handy from a source checkout or a git worktree)."""

from luodi.cli import app

if __name__ == "__main__":
    app()
