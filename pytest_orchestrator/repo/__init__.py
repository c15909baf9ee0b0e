"""The repository: git commands, the run's worktree, the user's checkout."""
