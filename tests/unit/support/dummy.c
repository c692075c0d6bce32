/* dummy.c -- keeps the test support library non-empty. */
int dn_test_support_linked;
