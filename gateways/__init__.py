"""How the API and the workers reach the daemons: the collatz client, CURVE keys."""
