/* config.c — command-line options into one config struct (being written). */
int config_placeholder(void);
int config_placeholder(void) {
  return 0;
}
