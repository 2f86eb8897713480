//! Prints the Elle verdict of an elle-cli JSON history: `elle_check FILE [list-append|rw-register]`.
use faultline::checker::elle::{self, ElleModel, ElleOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let h = faultline::history::read_file(
        std::path::Path::new(&args[1]),
        faultline::history::Format::Auto,
    )
    .unwrap();
    let model = if args.get(2).map(String::as_str) == Some("rw-register") {
        ElleModel::RwRegister
    } else {
        ElleModel::ListAppend
    };
    let v = elle::check(&h, &ElleOptions::new(model));
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
