"""Query understanding: from the typed text to words, constraints and what each word may mean."""
