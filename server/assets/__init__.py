"""Assets: every device a district owns, where it is, who has it, what happened to it;
the people devices are assigned to; links to tickets; room audits."""
