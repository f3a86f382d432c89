"""What people read: statistics, the terminal summary, the HTML report."""
