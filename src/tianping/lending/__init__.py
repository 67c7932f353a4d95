"""Digital lending: credit scoring with reasons, credit lines and instalment loans, pricing
within caps, co-lending with banks, servicing and loan-book quality. See README.md."""
